"""The twins as the training loop sees them: one adapter per network (the NumPy
:class:`~noshow.nn.numpy_mlp.NumpyMLP`, the PyTorch :mod:`~noshow.nn.torch_mlp` module with
``torch.optim``), the :class:`Ensemble` of members that noshow trains, saves and serves, and the
:class:`TrainingHooks` through which data-parallel training adds its work.

They sit here, beside the networks, so that the model file (:mod:`noshow.model`) and the service
build and run a model without importing the training loop (:mod:`noshow.training.loop`).
"""

from __future__ import annotations

import numpy as np

from noshow.nn.config import MLPConfig, join_members, lr_factor, member_config, split_members
from noshow.nn.encoded import ChunkStore, Encoded, chunks, take_rows


class TrainingHooks:
    """The points of a member's training where a caller adds work, as skorch's callbacks do: the
    loop's contract with data-parallel training (:class:`noshow.distributed.train.DataParallelHooks`).
    One process adds nothing: each method here does nothing. :func:`fit` hands the hooks to the
    backend once (``backend.begin(hooks)``) before the first epoch.

    - NumPy twin: :meth:`after_backward` gets step k's gradients, one flat buffer, between the
      backward pass and the optimiser step, and may change them in place (an all-reduce).
    - PyTorch twin: training calls :meth:`wrap`'s module (``DistributedDataParallel``, which
      reduces the gradients during the backward pass), on a loss times :meth:`loss_factor`.
    - Both: :meth:`dropout_stream` tells a process's dropout masks apart from the others'.
    """

    def dropout_stream(self) -> int:
        """0: the member's own dropout masks (one process, or rank 0); k > 0: a stream of its own."""
        return 0

    def after_backward(self, step: int, gradients: np.ndarray) -> None:
        """NumPy twin, step ``step`` of the epoch: ``gradients`` (n_parameters,) of its batch's mean loss."""

    def wrap(self, module):
        """PyTorch twin: the module that training calls in place of ``module``."""
        return module

    def loss_factor(self, step: int) -> float:
        """PyTorch twin: the factor of step ``step``'s mean loss before the backward pass."""
        return 1.0


NO_HOOKS = TrainingHooks()


class NumpyBackend:
    """Adapter of :class:`noshow.nn.numpy_mlp.NumpyMLP` to the training loop."""

    name = "numpy"

    def __init__(self, n_inputs: int, config: MLPConfig, parameters=None, device: str = "cpu"):
        from noshow.nn import numpy_mlp

        if device != "cpu":
            raise ValueError("the NumPy backend runs on the CPU only")
        self.config = config
        self.net = numpy_mlp.NumpyMLP(n_inputs, config, parameters)
        self.optimizer = numpy_mlp.make_optimizer(config)
        self.hooks = NO_HOOKS

    def begin(self, hooks: "TrainingHooks") -> None:
        """Training of this member starts with ``hooks`` (:class:`TrainingHooks`)."""
        from noshow.nn.numpy_mlp import Dropout

        self.hooks = hooks
        stream = hooks.dropout_stream()
        if stream:  # this process's own masks; stream 0 keeps the network's (one process's)
            rng = np.random.default_rng([self.config.seed, 1, stream])
            for layer in self.net.layers:
                if isinstance(layer, Dropout):
                    layer.rng = rng

    def prepare(self, X, y, sample_weight):
        """Keep the training data; X is an (n, d) array or a compact :class:`Encoded`."""
        dtype = self.config.np_dtype
        self._X = X if isinstance(X, Encoded) else np.ascontiguousarray(X, dtype=dtype)
        self._y = np.asarray(y, dtype=dtype)
        self._w = None if sample_weight is None else np.asarray(sample_weight, dtype=dtype)

    def train_batches(self, batches: list[np.ndarray], epoch: int, pos_weight: float) -> float:
        """One optimiser step per batch of the prepared rows; returns the summed batch losses x sizes."""
        self.optimizer.lr = self.config.lr * lr_factor(self.config, epoch)
        total = 0.0
        for k, idx in enumerate(batches):
            if len(idx):
                w = None if self._w is None else self._w[idx]
                X = take_rows(self._X, idx, self.config.np_dtype)
                total += len(idx) * self.net.loss_and_gradients(X, self._y[idx], pos_weight, w)
            else:  # a process's piece of a data-parallel step may hold no rows: it adds nothing
                self.net.flat_gradients[...] = 0.0
            self.hooks.after_backward(k, self.net.flat_gradients)
            # Speed: the whole network as one array (the optimisers are element-wise, so this is
            # the per-parameter update, bit for bit).
            self.optimizer.step({"network": self.net.flat_parameters}, {"network": self.net.flat_gradients})
        return total

    def end_epoch(self) -> None:
        """Nothing to do: the learning rate is set from the epoch number in train_batches."""

    def release(self) -> None:
        """Drop the references to the training data (training is over)."""
        self._X = self._y = self._w = None

    def predict_logits(self, X) -> np.ndarray:
        """Logits (n,) of an array or :class:`Encoded`, in chunks to bound memory."""
        dtype = self.config.np_dtype
        parts = [self.net.forward(take_rows(X, rows, dtype)) for rows in chunks(len(X))]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    def get_parameters(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.net.parameters.items()}

    def set_parameters(self, parameters: dict[str, np.ndarray]) -> None:
        for name, value in parameters.items():
            self.net.parameters[name][...] = value


class TorchBackend:
    """Adapter of :class:`noshow.nn.torch_mlp.TorchMLP` (``torch.optim``, ``LambdaLR``)."""

    name = "torch"

    def __init__(self, n_inputs: int, config: MLPConfig, parameters=None, device: str = "cpu"):
        import torch

        from noshow.nn import torch_mlp

        self.torch, self.tm = torch, torch_mlp
        self.config = config
        self.device = torch.device(device)
        self.dtype = torch_mlp.TORCH_DTYPES[config.dtype]
        # Dropout masks come from torch's generator; seeding it keeps runs reproducible.
        torch.manual_seed(config.seed)
        self.model = torch_mlp.build(n_inputs, config, parameters, device=device)
        self.optimizer = torch_mlp.make_optimizer(self.model, config)
        self.scheduler = torch_mlp.make_scheduler(self.optimizer, config)
        self.hooks, self.trainer = NO_HOOKS, self.model  # trainer: what training calls

    def begin(self, hooks: "TrainingHooks") -> None:
        """Training of this member starts with ``hooks`` (:class:`TrainingHooks`)."""
        self.hooks, self.trainer = hooks, hooks.wrap(self.model)
        stream = hooks.dropout_stream()
        if stream:  # this process's own masks; stream 0 keeps the member's seed (one process's)
            self.torch.manual_seed(self.config.seed + 7919 * stream)

    def _tensor(self, array):
        return self.torch.as_tensor(np.asarray(array)).to(device=self.device, dtype=self.dtype)

    def prepare(self, X, y, sample_weight):
        """Move the training data to the device once; an :class:`Encoded` stays compact there."""
        if isinstance(X, Encoded):
            self._X = (self._tensor(X.dense), self.torch.as_tensor(X.hot, dtype=self.torch.long, device=self.device), X.width)
        else:
            self._X = self._tensor(X)
        self._y = self._tensor(y)
        self._w = None if sample_weight is None else self._tensor(sample_weight)
        self._loss = None

    def _epoch_rows(self, batches: list[np.ndarray]):
        """The epoch's rows, gathered once in batch order: (inputs, labels, weights), each sliced
        per batch afterwards. One gather per epoch instead of three per batch."""
        order = self.torch.from_numpy(np.concatenate(batches)).to(self.device)

        def gather(t):  # index_select copies whole rows; t[order] went element by element (3x slower)
            return t.index_select(0, order)

        inputs = (gather(self._X[0]), gather(self._X[1])) if isinstance(self._X, tuple) else gather(self._X)
        return inputs, gather(self._y), None if self._w is None else gather(self._w)

    def _batch(self, inputs, rows: slice):
        """Dense input rows of one mini-batch; one-hot columns are scattered in on the device."""
        if not isinstance(inputs, tuple):
            return inputs[rows]
        dense, hot = inputs
        out = self.torch.zeros((rows.stop - rows.start, self._X[2]), dtype=self.dtype, device=self.device)
        out[:, : dense.shape[1]] = dense[rows]
        return out.scatter_(1, hot[rows], 1.0)

    def train_batches(self, batches: list[np.ndarray], epoch: int, pos_weight: float) -> float:
        """One optimiser step per batch of the prepared rows; returns the summed batch losses x sizes."""
        torch = self.torch
        if self._loss is None:
            self._loss = self.tm.loss_fn(self.config, pos_weight)
        self.model.train()
        inputs, y, w = self._epoch_rows(batches)
        losses, start = [], 0
        for k, idx in enumerate(batches):
            rows = slice(start, start + len(idx))
            start = rows.stop
            out = self.trainer(self._batch(inputs, rows))
            # A process's piece of a data-parallel step may hold no rows: a zero loss, zero gradients.
            loss = self._loss(out, y[rows], None if w is None else w[rows]) if len(idx) else out.sum()
            self.optimizer.zero_grad(set_to_none=True)
            factor = self.hooks.loss_factor(k)
            (loss if factor == 1.0 else loss * factor).backward()
            self.optimizer.step()
            losses.append(loss.detach())
        sizes = torch.tensor([len(idx) for idx in batches], dtype=torch.float64, device=self.device)
        return float(torch.stack(losses).to(torch.float64) @ sizes)

    def end_epoch(self) -> None:
        self.scheduler.step()

    def release(self) -> None:
        """Free the training data's device copy (training is over): an ensemble's members would
        otherwise each keep one, about 19 MB apiece on the real file."""
        self._X = self._y = self._w = None

    def predict_logits(self, X) -> np.ndarray:
        """Logits (n,) of an array or :class:`Encoded`, in chunks to bound memory."""
        torch = self.torch
        self.model.eval()
        with torch.inference_mode():
            out = [self.model(self._tensor(take_rows(X, rows, self.config.np_dtype))).cpu().numpy()
                   for rows in chunks(len(X))]
        return np.concatenate(out) if out else np.zeros(0, dtype=self.config.np_dtype)

    def get_parameters(self) -> dict[str, np.ndarray]:
        return self.tm.parameters_of(self.model)

    def set_parameters(self, parameters: dict[str, np.ndarray]) -> None:
        self.tm.load_parameters(self.model, parameters)


BACKEND_CLASSES = {"numpy": NumpyBackend, "torch": TorchBackend}
BACKENDS = tuple(BACKEND_CLASSES)  # the twins' names, everywhere: CLI choices, reports, files


def make_backend(name: str, n_inputs: int, config: MLPConfig, parameters=None, device: str = "cpu"):
    """The training adapter for ``name`` (one of :data:`BACKENDS`)."""
    if name not in BACKEND_CLASSES:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return BACKEND_CLASSES[name](n_inputs, config, parameters, device)


class Ensemble:
    """``config.members`` networks of one backend whose logits are averaged: the model that noshow
    trains, saves and serves.

    Member k is built from :func:`noshow.nn.config.member_config` (its own seed, hence its own
    initial weights, batch order and dropout masks), so the NumPy and PyTorch ensembles of one
    config are twins member by member. Parameters are one flat dict, member k's under
    ``members.<k>.``.
    """

    def __init__(self, name: str, n_inputs: int, config: MLPConfig, parameters=None, device: str = "cpu"):
        self.name = name
        self.config = config
        initial = split_members(parameters, config) if parameters is not None else [None] * config.members
        self.members = [make_backend(name, n_inputs, member_config(config, k), p, device)
                        for k, p in enumerate(initial)]

    def predict_logits(self, X) -> np.ndarray:
        """Mean of the members' logits, shape (n,): averaging in logit space keeps one decision scale."""
        logits = [member.predict_logits(X) for member in self.members]
        return np.mean(logits, axis=0, dtype=logits[0].dtype)  # one member: its logits, exactly

    def get_parameters(self) -> dict[str, np.ndarray]:
        return join_members([member.get_parameters() for member in self.members])


def make_model(name: str, n_inputs: int, config: MLPConfig, parameters=None, device: str = "cpu") -> Ensemble:
    """The :class:`Ensemble` of ``config.members`` ``name`` networks (initial or given parameters);
    :func:`make_backend` rejects an unknown ``name``."""
    return Ensemble(name, n_inputs, config, parameters, device)


def predict_all(backend, X) -> np.ndarray:
    """Logits of every row of an array, :class:`Encoded` or :class:`ChunkStore` (chunk by chunk)."""
    if isinstance(X, ChunkStore):
        return np.concatenate([backend.predict_logits(X.chunk(i)[0]) for i in range(len(X.prefixes))])
    return backend.predict_logits(X)
