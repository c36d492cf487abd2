"""Joining a data-parallel run started by an engine's own launcher.

``torchrun ... -m noshow train --backend torch`` and ``mpiexec -n P python -m noshow train
--backend numpy`` start P copies of the ordinary command; each finds out from its environment
which run it belongs to (:func:`detect`), joins it (:func:`connect`) and trains its shard. Nothing
here starts processes: the launchers people already run do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from noshow.errors import NoshowError, ProcessError

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")  # set by torchrun for each worker
MPI_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")  # MPICH and Intel MPI (PMI); Open MPI
DEFAULT_TIMEOUT_S = 600
TORCH_COMMAND = "torchrun --nproc-per-node P -m noshow train --backend torch ..."
MPI_COMMAND = "mpiexec -n P python -m noshow train --backend numpy ..."


@dataclass(frozen=True)
class Launch:
    """The run this process belongs to: ``engine`` "torch" (torchrun) or "mpi" (mpiexec)."""

    engine: str
    rank: int
    size: int
    local_rank: int = 0


def detect(environ=os.environ) -> Launch | None:
    """The data-parallel run described by the launcher's environment variables, or None when the
    command was started on its own."""
    if all(name in environ for name in TORCHRUN_VARIABLES):
        return Launch("torch", int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ.get("LOCAL_RANK", 0)))
    for name in MPI_SIZE_VARIABLES:
        if name in environ:
            rank = environ.get("PMI_RANK", environ.get("OMPI_COMM_WORLD_RANK", "0"))
            local = environ.get("MPI_LOCALRANKID", environ.get("OMPI_COMM_WORLD_LOCAL_RANK", "0"))
            return Launch("mpi", int(rank), int(environ[name]), int(local))
    return None


def connect(launch: Launch, backend: str, device: str = "cpu", timeout_s: float = DEFAULT_TIMEOUT_S):
    """Join the run with the engine of ``backend``'s twin; returns a :class:`~noshow.distributed.comm.Comm`.

    The NumPy twin runs on MPI and the PyTorch twin on ``torch.distributed``: each twin keeps to
    its own engine, so the NumPy twin never loads a deep-learning framework.
    """
    if launch.engine == "torch" and backend != "torch":
        raise NoshowError(f"torchrun runs the PyTorch twin (--backend torch); the NumPy twin runs under MPI: {MPI_COMMAND}")
    if launch.engine == "mpi" and backend != "numpy":
        raise NoshowError(f"mpiexec runs the NumPy twin (--backend numpy); the PyTorch twin runs under torchrun: {TORCH_COMMAND}")
    if launch.engine == "mpi":
        return _connect_mpi()
    return _connect_torch(launch, device, timeout_s)


MPI_LOCAL_SIZE_VARIABLES = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")  # processes on this machine


def _connect_mpi(environ=os.environ):
    try:
        from noshow.distributed.comm import MPIComm

        comm = MPIComm()
    except ImportError:
        raise NoshowError("training under mpiexec needs mpi4py and an MPI: pip install 'noshow[mpi]'") from None
    # The machine's cores are shared by its processes: one BLAS pool each of all cores would
    # oversubscribe them (torchrun sets OMP_NUM_THREADS=1 for the same reason).
    local = next((int(environ[v]) for v in MPI_LOCAL_SIZE_VARIABLES if v in environ), comm.size)
    from threadpoolctl import threadpool_limits

    threadpool_limits(max(1, (os.cpu_count() or 1) // max(local, 1)))
    return comm


def _connect_torch(launch: Launch, device: str, timeout_s: float):
    import torch.distributed as dist

    from noshow.distributed.comm import TorchComm

    on_gpu = device.startswith("cuda")
    if on_gpu:
        import torch

        device = f"cuda:{launch.local_rank}"
        torch.cuda.set_device(device)
    try:
        dist.init_process_group("nccl" if on_gpu else "gloo", timeout=timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as exc:
        raise ProcessError(f"rank {launch.rank}: could not join the torch.distributed run at "
                          f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')} ({_first_line(exc)})") from None
    return TorchComm(device)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def lost_peer(launch: Launch, exc: BaseException) -> ProcessError:
    """The one-line error of a process whose collective failed: a peer died or became unreachable
    (or did not answer within the timeout)."""
    return ProcessError(f"rank {launch.rank} of {launch.size}: a collective operation failed; another process "
                       f"of the run died or became unreachable ({_first_line(exc)})")
