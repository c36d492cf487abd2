"""The few collectives data-parallel training needs, on the engine each twin runs on.

- :class:`MPIComm`: mpi4py, for the NumPy twin (no deep-learning framework anywhere near it).
- :class:`TorchComm`: ``torch.distributed`` (gloo on the CPU, NCCL on CUDA), for the PyTorch twin,
  whose gradients ``DistributedDataParallel`` reduces itself.

Both move NumPy arrays only, through buffers: nothing is pickled, so nothing a peer sends can run
code (mpi4py's lower-case methods and ``all_gather_object`` would pickle); JSON values and polars
frames (Arrow IPC) cross as bytes.
"""

from __future__ import annotations

import gc
import json

import numpy as np


class Comm:
    """Collectives over ``size`` processes; ``rank`` is this one's number (0 leads)."""

    rank: int = 0
    size: int = 1

    def allreduce_(self, array: np.ndarray) -> np.ndarray:
        """Sum ``array`` over the processes, in place; returns it."""
        raise NotImplementedError

    def broadcast_(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        """Overwrite ``array`` with ``root``'s, in place; returns it."""
        raise NotImplementedError

    def _allgather_padded(self, array: np.ndarray, longest: int) -> np.ndarray:
        """(size, longest) array of every process's 1-D ``array``, each padded to ``longest``."""
        raise NotImplementedError

    def _gather_padded(self, array: np.ndarray, longest: int, root: int) -> np.ndarray | None:
        """(size, longest) array of every process's padded 1-D ``array`` on ``root``; None elsewhere."""
        raise NotImplementedError

    def _lengths(self, array: np.ndarray) -> np.ndarray:
        lengths = np.zeros(self.size, dtype=np.int64)
        lengths[self.rank] = len(array)
        return self.allreduce_(lengths)

    def gather(self, array: np.ndarray, root: int = 0) -> list[np.ndarray] | None:
        """Every process's 1-D ``array`` (lengths may differ), in rank order, on ``root`` only
        (None elsewhere): what one process needs costs the others no memory."""
        lengths = self._lengths(array)
        padded = np.zeros(int(lengths.max()), dtype=array.dtype)
        padded[: len(array)] = array
        rows = self._gather_padded(padded, int(lengths.max()), root)
        return None if rows is None else [rows[r, : lengths[r]] for r in range(self.size)]

    def allgather(self, array: np.ndarray) -> list[np.ndarray]:
        """Every process's 1-D ``array`` (lengths may differ), in rank order, on every process."""
        lengths = self._lengths(array)
        padded = np.zeros(int(lengths.max()), dtype=array.dtype)
        padded[: len(array)] = array
        rows = self._allgather_padded(padded, int(lengths.max()))
        return [rows[r, : lengths[r]] for r in range(self.size)]

    def allgather_json(self, value) -> list:
        """Every process's JSON-able ``value``, in rank order (sent as UTF-8 bytes)."""
        data = np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)
        return [json.loads(part.tobytes()) for part in self.allgather(data)]

    def gather_frame(self, frame, root: int = 0) -> list | None:
        """Every process's polars frame, in rank order, on ``root`` (None elsewhere); sent as
        Arrow IPC bytes: data only, so reading a peer's frame runs no code."""
        import io

        import polars as pl

        buffer = io.BytesIO()
        frame.write_ipc(buffer)
        parts = self.gather(np.frombuffer(buffer.getvalue(), dtype=np.uint8), root)
        return None if parts is None else [pl.read_ipc(io.BytesIO(part.tobytes())) for part in parts]

    def total(self, *values: float) -> np.ndarray:
        """Sums over the processes of a few numbers, as a float64 array."""
        return self.allreduce_(np.array(values, dtype=np.float64))

    def barrier(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Leave the process group (after the last collective)."""


class MPIComm(Comm):
    """``MPI.COMM_WORLD`` through mpi4py's buffer (upper-case) methods."""

    def __init__(self):
        from mpi4py import MPI

        self.MPI = MPI
        self.world = MPI.COMM_WORLD
        self.rank, self.size = self.world.Get_rank(), self.world.Get_size()

    def allreduce_(self, array):
        self.world.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)
        return array

    def broadcast_(self, array, root=0):
        self.world.Bcast(array, root=root)
        return array

    def _gather_padded(self, array, longest, root):
        out = np.empty((self.size, longest), dtype=array.dtype) if self.rank == root else None
        self.world.Gather(array, out, root=root)
        return out

    def _allgather_padded(self, array, longest):
        out = np.empty((self.size, longest), dtype=array.dtype)
        self.world.Allgather(array, out)
        return out

    def barrier(self):
        self.world.Barrier()


class TorchComm(Comm):
    """The default ``torch.distributed`` process group; arrays cross it as tensors on ``device``
    (the CPU for gloo, the GPU for NCCL), sharing memory with the array on the CPU."""

    def __init__(self, device: str = "cpu"):
        import torch
        import torch.distributed as dist

        self.torch, self.dist, self.device = torch, dist, torch.device(device)
        self.rank, self.size = dist.get_rank(), dist.get_world_size()

    def _run(self, array: np.ndarray, op) -> np.ndarray:
        tensor = self.torch.from_numpy(array)
        if self.device.type == "cpu":
            op(tensor)  # in place on the array's memory
        else:
            moved = tensor.to(self.device)
            op(moved)
            array[...] = moved.cpu().numpy()
        return array

    def allreduce_(self, array):
        return self._run(array, lambda t: self.dist.all_reduce(t, op=self.dist.ReduceOp.SUM))

    def broadcast_(self, array, root=0):
        return self._run(array, lambda t: self.dist.broadcast(t, src=root))

    def _allgather_padded(self, array, longest):
        tensor = self.torch.from_numpy(array).to(self.device)
        parts = [self.torch.empty_like(tensor) for _ in range(self.size)]
        self.dist.all_gather(parts, tensor)
        return np.stack([p.cpu().numpy() for p in parts])

    def _gather_padded(self, array, longest, root):
        tensor = self.torch.from_numpy(array).to(self.device)
        parts = [self.torch.empty_like(tensor) for _ in range(self.size)] if self.rank == root else None
        self.dist.gather(tensor, parts, dst=root)
        return None if parts is None else np.stack([p.cpu().numpy() for p in parts])

    def barrier(self):
        self.dist.barrier()

    def close(self):
        if self.dist.is_initialized():
            # A DistributedDataParallel wrapper sits in a reference cycle, so it outlives its last
            # name until the cyclic collector runs, and its reducer keeps the group alive. Left to
            # interpreter exit, the group's threads were torn down there and aborted the process
            # ("terminate called without an active exception", 4 runs in 40 under load).
            gc.collect()
            self.dist.destroy_process_group()
