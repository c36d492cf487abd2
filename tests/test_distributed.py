"""Data-parallel training: 2 processes on loopback train the model 1 process trains.

Each run is a real launch, as a user would type it: ``mpiexec -n 2 python -m noshow train
--backend numpy`` (MPICH from its pip wheel) and ``torchrun --nproc-per-node 2 -m noshow train
--backend torch`` (gloo). The oracle is ``noshow train`` in one process, on the same file with the
same flags: the same split, the same global batches in the same order, so with dropout off and
float64 the weights and the model file's record must agree. A run one process would stream
(``--stream``: the hash split, each process its own batch order) is checked against the
one-process training step replayed on every row with batches that are the two processes' pieces
together. Every launch has a timeout, so a hung collective fails the test instead of hanging CI.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import free_port
from noshow.cli import main as noshow_main
from noshow.data import schema as S
from noshow.data.features import FeaturePipeline
from noshow.distributed.launch import Launch, detect
from noshow.distributed.train import shard_parts
from noshow.model import TrainedModel
from noshow.nn.config import split_members
from replay import max_difference, replay_one_process

BIN = Path(sys.executable).parent
MPIEXEC, TORCHRUN = shutil.which("mpiexec", path=str(BIN)), shutil.which("torchrun", path=str(BIN))
NOSHOW_TORCHRUN = (sys.executable, "-m", "noshow.distributed.torchrun")  # the noshow-torchrun script
# No dropout and float64: the runs must then agree to rounding. Three epochs of a small network.
EXACT = ("--hidden", "16,8", "--members", "1", "--epochs", "3", "--patience", "0", "--batch-size", "64",
         "--dtype", "float64", "--dropout", "0", "--quiet")
LAUNCH_TIMEOUT_S = 120
ENGINES = {"numpy": "mpi", "torch": "torch.distributed"}
# What only a data-parallel model file's data record holds: how many processes trained it.
ITS_OWN = {"processes"}

needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not installed (pip install 'noshow[mpi]')")


def launch(*command: str, cwd: Path, timeout: float = LAUNCH_TIMEOUT_S, env: dict | None = None):
    """Run a launcher command to the end (or fail the test at ``timeout``)."""
    environ = {k: v for k, v in os.environ.items() if k != "NOSHOW_DATA"}
    environ.update(env or {})
    return subprocess.run(list(command), capture_output=True, text=True, cwd=cwd, timeout=timeout, env=environ)


def mpi_train(data: Path, out: Path, processes: int, *flags: str, cwd: Path):
    return launch(MPIEXEC, "-n", str(processes), sys.executable, "-m", "noshow", "train", "--backend", "numpy",
                  "--data", str(data), "--out", str(out), *flags, cwd=cwd)


def torch_train(data: Path, out: Path, processes: int, *flags: str, cwd: Path, port: int | None = None,
                launcher=(TORCHRUN,)):
    return launch(*launcher, "--nproc-per-node", str(processes), "--master-addr", "127.0.0.1",
                  "--master-port", str(port or free_port()), "-m", "noshow", "train", "--backend", "torch",
                  "--data", str(data), "--out", str(out), *flags, cwd=cwd)


TRAINERS = {"numpy": mpi_train, "torch": torch_train}


def one_process(data: Path, out: Path, backend: str, *flags: str) -> TrainedModel:
    """``noshow train`` in this process, as a user would run it without a launcher."""
    assert noshow_main(["train", "--backend", backend, "--data", str(data), "--out", str(out), *flags]) == 0
    return TrainedModel.load(out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_csv):
    """The two-process models of each twin, trained once for the module."""
    folder = tmp_path_factory.mktemp("distributed")
    done = {}
    if MPIEXEC:
        done["numpy"] = mpi_train(small_csv, folder / "numpy.npz", 2, *EXACT, cwd=folder)
    done["torch"] = torch_train(small_csv, folder / "torch.npz", 2, *EXACT, cwd=folder)
    for name, run in done.items():
        assert run.returncode == 0, run.stderr[-2000:]
    return {name: TrainedModel.load(folder / f"{name}.npz") for name in done}


@pytest.fixture(scope="module")
def alone(tmp_path_factory, small_csv):
    """Each twin's model of one process, same file and flags."""
    folder = tmp_path_factory.mktemp("one-process")
    return {name: one_process(small_csv, folder / f"{name}.npz", name, *EXACT) for name in ("numpy", "torch")}


@needs_mpi
def test_numpy_over_mpi_ends_with_the_weights_of_one_process(runs, alone):
    assert max_difference(runs["numpy"].parameters, alone["numpy"].parameters) < 1e-9


def test_torch_over_ddp_ends_with_the_weights_of_one_process(runs, alone):
    assert max_difference(runs["torch"].parameters, alone["torch"].parameters) < 1e-9


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_data_parallel_model_records_the_rows_split_and_summaries_of_one_process(runs, alone, backend):
    if backend not in runs:
        pytest.skip("mpiexec not installed")
    two, one = runs[backend].metadata, alone[backend].metadata
    assert {k: v for k, v in two["data"].items() if k not in ITS_OWN} == one["data"]
    assert two["data"]["n_train"] == 2700 and two["data"]["n_val"] == 300 and two["data"]["n_test"] == 0
    assert two["data"]["train_ids_sha256"] == one["data"]["train_ids_sha256"]
    assert two["reason_reference"] == one["reason_reference"]
    assert two["training_profile"] == one["training_profile"]
    assert runs[backend].threshold == pytest.approx(alone[backend].threshold, abs=1e-9)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_data_parallel_model_records_world_size_engine_and_global_batch(runs, alone, backend):
    if backend not in runs:
        pytest.skip("mpiexec not installed")
    two, one = runs[backend].metadata["training"], alone[backend].metadata["training"]
    assert (two["world_size"], two["engine"], two["global_batch"]) == (2, ENGINES[backend], 64)
    assert (one["world_size"], one["engine"], one["global_batch"]) == (1, None, 64)
    assert runs[backend].metadata["data"]["processes"] == 2


@needs_mpi
def test_numpy_over_mpi_and_torch_over_ddp_stay_twins(runs):
    numpy_model, torch_model = runs["numpy"], runs["torch"]
    assert max_difference(numpy_model.parameters, torch_model.parameters) < 1e-9
    assert numpy_model.threshold == pytest.approx(torch_model.threshold, abs=1e-9)


def test_combined_feature_statistics_are_those_one_process_fits(runs, small_csv):
    rows = shard_parts(small_csv, 0, 1)  # one process: every row
    alone = FeaturePipeline().fit(rows.raw.filter(rows.part == 0))
    combined = runs["torch"].pipeline
    assert combined.vocabularies == alone.vocabularies
    for name in alone.means:
        assert combined.means[name] == pytest.approx(alone.means[name], rel=1e-12, abs=1e-12)
        assert combined.stds[name] == pytest.approx(alone.stds[name], rel=1e-12)


def test_each_process_holds_whole_patients_and_together_every_row(small_csv):
    shards = [shard_parts(small_csv, rank, 2).frame for rank in range(2)]
    patients = [set(frame[S.PATIENT_KEY].to_list()) for frame in shards]
    assert patients[0].isdisjoint(patients[1])
    assert sum(frame.height for frame in shards) == 3000
    assert min(frame.height for frame in shards) > 1000  # a hash splits 3,000 rows near evenly


@pytest.mark.parametrize("split", ["time", "patient"])
def test_two_processes_train_on_the_rows_of_every_split_of_one_process(small_csv, tmp_path, split):
    flags = ("--split", split, "--split-seed", "3", *EXACT)
    run = torch_train(small_csv, tmp_path / "two.npz", 2, *flags, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    one = one_process(small_csv, tmp_path / "one.npz", "torch", *flags)
    two = TrainedModel.load(tmp_path / "two.npz")
    assert {k: v for k, v in two.metadata["data"].items() if k not in ITS_OWN} == one.metadata["data"]
    assert max_difference(two.parameters, one.parameters) < 1e-9


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_process_without_rows_in_a_step_adds_nothing_to_it(small_csv, tmp_path, backend):
    if backend == "numpy" and MPIEXEC is None:
        pytest.skip("mpiexec not installed")
    # Global batches of 2 rows: one process's share of a step is often empty.
    flags = ("--hidden", "8", "--members", "1", "--epochs", "1", "--patience", "0", "--batch-size", "2",
             "--dtype", "float64", "--dropout", "0", "--quiet")
    run = TRAINERS[backend](small_csv, tmp_path / "two.npz", 2, *flags, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    one = one_process(small_csv, tmp_path / "one.npz", backend, *flags)
    assert max_difference(TrainedModel.load(tmp_path / "two.npz").parameters, one.parameters) < 1e-9


@needs_mpi
def test_a_run_one_process_would_stream_takes_the_steps_of_its_pieces_together(small_csv, tmp_path):
    run = mpi_train(small_csv, tmp_path / "m.npz", 2, "--stream", *EXACT, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    model = TrainedModel.load(tmp_path / "m.npz")
    assert model.metadata["data"]["split"] == "hash"
    two = split_members(model.parameters, model.config)[0]
    assert max_difference(two, replay_one_process(small_csv, model, "numpy")) < 1e-9


def test_two_nodes_of_one_process_train_what_one_node_of_two_trains(runs, small_csv, tmp_path):
    port = free_port()
    nodes = [subprocess.Popen([TORCHRUN, "--nnodes", "2", "--node-rank", str(rank), "--nproc-per-node", "1",
                               "--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "noshow", "train",
                               "--backend", "torch", "--data", str(small_csv), "--out", str(tmp_path / "m.npz"), *EXACT],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              # One thread each, as torchrun gives two processes of one node: a
                              # matrix product split over threads may add in another order.
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
             for rank in range(2)]
    try:
        for node in nodes:
            _, err = node.communicate(timeout=LAUNCH_TIMEOUT_S)
            assert node.returncode == 0, err[-2000:]
    finally:  # a node that failed leaves the other waiting for it: never leave it to later tests
        for node in nodes:
            node.kill()
    assert max_difference(TrainedModel.load(tmp_path / "m.npz").parameters, runs["torch"].parameters) == 0.0


def our_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_a_partition_folder_trains_the_model_the_csv_trains(runs, small_csv, tmp_path):
    from noshow.cli import main

    assert main(["partition", "--data", str(small_csv), "--parts", "4", "--out", str(tmp_path / "parts")]) == 0
    run = torch_train(tmp_path / "parts", tmp_path / "m.npz", 2, *EXACT, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    model = TrainedModel.load(tmp_path / "m.npz")
    assert max_difference(model.parameters, runs["torch"].parameters) == 0.0
    assert model.metadata["data"]["sha256"] == runs["torch"].metadata["data"]["sha256"]


def test_a_partition_folder_refuses_a_number_of_processes_that_does_not_divide_its_parts(small_csv, tmp_path):
    from noshow.distributed.shard import read_shard, write_partition
    from noshow.errors import NoshowError

    write_partition(small_csv, 4, tmp_path / "parts")
    with pytest.raises(NoshowError, match="4 parts cannot be shared by 3 processes"):
        read_shard(tmp_path / "parts", 0, 3)


@needs_mpi
def test_two_mpi_hosts_of_one_process_train_what_one_host_of_two_trains(runs, small_csv, tmp_path):
    # Hydra places one process on each named host; both names are this machine.
    run = launch(MPIEXEC, "-hosts", "127.0.0.1:1,localhost:1", "-n", "2", sys.executable, "-m", "noshow", "train",
                 "--backend", "numpy", "--data", str(small_csv), "--out", str(tmp_path / "m.npz"), *EXACT, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert max_difference(TrainedModel.load(tmp_path / "m.npz").parameters, runs["numpy"].parameters) == 0.0


def test_torchrun_with_the_numpy_twin_says_to_use_mpiexec(small_csv, tmp_path):
    run = launch(*NOSHOW_TORCHRUN, "--nproc-per-node", "2", "--master-port", str(free_port()), "-m", "noshow", "train",
                 "--backend", "numpy", "--data", str(small_csv), "--out", str(tmp_path / "m.npz"), cwd=tmp_path)
    lines = our_lines(run.stderr)
    assert run.returncode == 2 and len(lines) == 1 and "mpiexec -n P" in lines[0]
    assert not (tmp_path / "m.npz").exists()


def test_a_bad_data_file_is_said_once_for_all_processes(tmp_path):
    run = launch(*NOSHOW_TORCHRUN, "--nproc-per-node", "2", "--master-port", str(free_port()), "-m", "noshow",
                 "train", "--backend", "torch", "--data", "absent.csv", "--out", "m.npz", cwd=tmp_path)
    assert run.returncode == 2
    assert our_lines(run.stderr) == ["noshow: error: absent.csv: file not found"]


def test_a_port_in_use_is_a_one_line_error(small_csv, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = torch_train(small_csv, tmp_path / "m.npz", 2, *EXACT, cwd=tmp_path, port=port,
                          launcher=NOSHOW_TORCHRUN)
    assert run.returncode == 2 and not (tmp_path / "m.npz").exists()
    lines = our_lines(run.stderr)
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "address already in use" in lines[0]


def test_a_process_that_dies_stops_the_run_with_a_one_line_error(small_csv, tmp_path):
    import psutil

    runner = subprocess.Popen([*NOSHOW_TORCHRUN, "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port",
                               str(free_port()), "-m", "noshow", "train", "--backend", "torch", "--data", str(small_csv),
                               "--out", str(tmp_path / "m.npz"), "--epochs", "500", "--patience", "0", "--members", "1",
                               "--quiet", "--timeout", "30"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(psutil.Process(runner.pid).children()) < 2:
        time.sleep(0.2)
    time.sleep(8)  # both workers past start-up and into their epochs
    workers = sorted(psutil.Process(runner.pid).children(), key=lambda p: p.pid)
    workers[-1].kill()
    _, err = runner.communicate(timeout=LAUNCH_TIMEOUT_S)
    assert runner.returncode == 2 and not (tmp_path / "m.npz").exists()
    lines = our_lines(err)
    assert lines[-1] == "noshow: error: a process of the run failed (rank 1 killed by SIGKILL); the others were stopped"
    assert all(line.startswith("noshow: error: ") for line in lines) and len(lines) <= 2


@needs_mpi
def test_mpi_run_without_mpi4py_says_how_to_install_it(small_csv, tmp_path):
    code = ("import sys; sys.modules['mpi4py'] = None; from noshow.cli import main; "
            f"sys.exit(main(['train', '--backend', 'numpy', '--data', {str(small_csv)!r}, '--out', 'm.npz']))")
    run = launch(sys.executable, "-c", code, cwd=tmp_path, env={"PMI_SIZE": "2", "PMI_RANK": "0"})
    assert run.returncode == 2
    assert run.stderr.strip() == "noshow: error: training under mpiexec needs mpi4py and an MPI: pip install 'noshow[mpi]'"


# One gloo process: a DistributedDataParallel wrapper trained one step, its last name dropped, then
# the group closed with the cyclic collector off; prints, for each time the wrapper was freed,
# whether the group still existed then.
CLOSE_FREES_DDP = """
import gc, weakref
import torch
import torch.distributed as dist
from noshow.distributed.comm import TorchComm
gc.disable()
dist.init_process_group("gloo", init_method="tcp://127.0.0.1:{port}", rank=0, world_size=1)
comm = TorchComm()
wrapper = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(3, 1))
wrapper(torch.ones(2, 3)).sum().backward()
group_when_freed = []
alive = weakref.ref(wrapper, lambda _: group_when_freed.append(dist.is_initialized()))
del wrapper
assert alive() is not None  # a reference cycle keeps it
comm.close()
print(group_when_freed)
"""


def test_closing_a_torch_group_frees_its_ddp_wrappers_before_the_group():
    # Left to interpreter exit, the wrapper's hold on the group aborted processes in teardown.
    done = subprocess.run([sys.executable, "-c", CLOSE_FREES_DDP.format(port=free_port())],
                          capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[True]"


def test_detect_reads_torchrun_and_mpi_environments():
    assert detect({}) is None
    torchrun = {"RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "h", "MASTER_PORT": "1", "LOCAL_RANK": "1"}
    assert detect(torchrun) == Launch("torch", 1, 4, 1)
    assert detect({"PMI_SIZE": "3", "PMI_RANK": "2"}) == Launch("mpi", 2, 3, 0)
    assert detect({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"}) == Launch("mpi", 1, 2, 0)


def test_numpy_twin_under_mpi_never_imports_torch(small_csv, tmp_path):
    if MPIEXEC is None:
        pytest.skip("mpiexec not installed")
    code = ("import sys, runpy; sys.argv = ['noshow', 'train', '--backend', 'numpy', '--data', "
            f"{str(small_csv)!r}, '--out', 'm.npz', '--epochs', '1', '--members', '1', '--quiet']\n"
            "try:\n    runpy.run_module('noshow', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    run = launch(MPIEXEC, "-n", "2", sys.executable, "-c", code, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
