"""``noshow train``: train a model for use (in memory, streamed from disk, or data-parallel) and
save it with its card."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import traceback

from noshow.cli import common
from noshow.cli.common import STREAM_BYTES, check_device, config_of, positive_int, resolve_data, schema_of, write_card
from noshow.errors import NoshowError

# Whether `noshow train` refits its networks on training + validation rows (--refit / --no-refit).
REFIT = False


def cmd_train(args) -> int:
    from noshow.allocator import keep_freed_memory
    from noshow.data.prepare import prepare
    from noshow.files import check_writable_parent
    from noshow.training.train import train_model

    check_writable_parent(args.out)
    config = config_of(args)
    check_device(args)
    from noshow.distributed.launch import detect

    streamed = args.stream or (args.data and os.path.isfile(args.data) and os.path.getsize(args.data) > STREAM_BYTES)
    if not streamed:  # streamed from disk, kept memory only raises the peak (allocator.py)
        keep_freed_memory()
    launch = detect()
    if launch is not None and args.schema:
        raise NoshowError(f"--schema {args.schema}: data-parallel training reads the Kaggle layout only; "
                          f"train this export in one process")
    if launch is not None:
        return _train_data_parallel(args, config, launch, "hash" if streamed else args.split)
    if streamed and args.db:
        raise NoshowError("--db: training streamed from disk cannot leave out the appointments acted on; drop --stream")
    if streamed:
        from noshow.training.train import train_streamed

        if not args.data:
            raise NoshowError("--stream needs --data FILE")
        if args.refit:
            raise NoshowError("--refit: a model trained streamed from disk is not refitted; drop --stream or --refit")
        model, result = train_streamed(args.data, args.backend, config, progress=not args.quiet, device=args.device,
                                       schema=schema_of(args))
        source, n_train = args.data, model.metadata["data"]["n_train"]
    else:
        loaded = resolve_data(args)
        if args.db:
            loaded = _without_acted_on(loaded, args.db, args.quiet)
        # A model for use learns from every row but the validation part (no test part held out).
        prepared = prepare(loaded, args.split, args.split_seed, config.dtype, hold_out_test=False)
        refit = REFIT if args.refit is None else args.refit
        model, result = train_model(prepared, args.backend, config, progress=not args.quiet, device=args.device,
                                    refit=refit)
        source, n_train = loaded.source, len(prepared.split.train)
    _report_trained(args, model, result, source, n_train)
    return 0


def _without_acted_on(loaded, db: str, quiet: bool):
    """``loaded`` less the appointments the store says someone acted on (listed to call, or
    called): a call changes the outcome it predicts, so their outcomes are not the untreated risk
    a model must learn. Not-flagged and randomised held-out appointments stay."""
    import polars as pl

    from noshow.data import schema as S
    from noshow.store.database import open_store
    from noshow.store.repository import acted_on

    acted = acted_on(open_store(db))
    kept = loaded.frame.filter(~pl.col(S.APPOINTMENT_ID).is_in(sorted(acted)))
    if not quiet:
        print(f"noshow: left out {loaded.frame.height - kept.height:,} appointment(s) acted on (listed to call or "
              f"called, as {db} records): their outcomes are not the untreated risk", file=sys.stderr)
    if kept.height == 0:
        raise NoshowError(f"--db {db}: every appointment of {loaded.source} was acted on; nothing is left to learn from")
    return dataclasses.replace(loaded, frame=kept)


def _train_data_parallel(args, config, launch, split: str) -> int:
    """``noshow train`` as one process of a torchrun or mpiexec run: rank 0 writes and reports.
    ``split``: the one a single process would make (``hash``: the streamed path's)."""
    from noshow.distributed.launch import connect, lost_peer
    from noshow.distributed.train import train_data_parallel

    if not args.data:
        raise NoshowError("data-parallel training needs --data FILE or FOLDER (a CSV, or a folder from noshow "
                          "partition; every process reads its own patients from it)")
    comm = connect(launch, args.backend, args.device, args.timeout)
    try:
        model, result = train_data_parallel(args.data, args.backend, config, comm, progress=not args.quiet,
                                            device=args.device, split=split, seed=args.split_seed)
        # Rank 0 finishes the model (calibration, threshold) alone; the others wait for it, so that
        # every process leaves the group together (TorchComm.close says what aborted teardowns).
        comm.barrier()
    except (RuntimeError, OSError) as exc:  # a collective failed: gloo raises RuntimeError subclasses
        # The failed frames hold the model and its DistributedDataParallel wrappers: clear them, so
        # that close() frees the wrappers before the group (see TorchComm.close).
        traceback.clear_frames(exc.__traceback__)
        if isinstance(exc, FloatingPointError):
            raise
        raise lost_peer(launch, exc) from None
    finally:
        comm.close()
    if model is not None:
        _report_trained(args, model, result, args.data, model.metadata["data"]["n_train"],
                        f" with {launch.size} processes")
    return 0


def _report_trained(args, model, result, source, n_train: int, how: str = "") -> None:
    """Write the model file and its card; say what was trained."""
    model.save(args.out)
    card = write_card(model, args.out)
    if not args.quiet:
        training = model.metadata["training"]
        print(
            f"trained {args.backend}{how} on {n_train:,} rows of {source}: "
            f"{training['members']} network(s), {training['epochs_run']} epochs in all (best "
            f"{', '.join(map(str, training['best_epochs']))}"
            f"{'; refitted on training + validation rows' if training['refit'] else ''}) in {result.train_seconds:.1f} s, "
            f"validation PR AUC {training['val_pr_auc']:.4f}, "
            f"calibration {training.get('calibration', 'none')}, threshold {model.threshold:.4f}; "
            f"wrote {args.out} and {card}"
        )


def add_parser(commands) -> None:
    from noshow.nn.twins import BACKENDS

    train = commands.add_parser("train", parents=[common.data_flags(), common.network_flags()],
                                help="train a model (NumPy or PyTorch twin) and save it")
    train.add_argument("--backend", choices=BACKENDS, default="numpy")
    train.add_argument("--device", default="cpu", help="torch device: cpu or cuda[:N]")
    train.add_argument("--out", required=True, metavar="MODEL.npz")
    train.add_argument("--quiet", action="store_true")
    train.add_argument("--stream", action="store_true",
                       help="build features out of core and train from disk in chunks (automatic above 1 GB)")
    train.add_argument("--db", metavar="DB", help="the clinic's store: leave out the appointments it records as acted "
                       "on (listed to call, or called), whose outcomes the calls changed")
    train.add_argument("--timeout", type=positive_int, default=600, metavar="SECONDS",
                       help="under torchrun: how long a process waits for its peers before it gives up")
    train.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None,
                       help="after early stopping, train each network afresh on training + validation rows for "
                            "its chosen epoch count; calibration and threshold stay the validation ones "
                            f"(default: {'on' if REFIT else 'off'}; not with --stream)")
    train.set_defaults(run=cmd_train)
