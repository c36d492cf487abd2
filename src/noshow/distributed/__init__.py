"""Data-parallel training of both twins across processes and machines, on existing engines:
MPI (mpi4py) for the NumPy twin, ``torch.distributed`` for the PyTorch twin. Importing this
package imports neither."""
