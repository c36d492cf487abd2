"""The ``noshow`` command line: parsing and messages only; the work lives in the library modules.

A user's mistake (a :class:`~noshow.errors.NoshowError`, or a bad flag caught by argparse) prints
one line ``noshow: error: ...`` on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback

from noshow.errors import NoshowError

EXIT_USAGE = 2
STREAM_BYTES = 1 << 30  # train streams from disk by itself for files larger than this
# Whether `noshow train` refits its networks on training + validation rows (--refit / --no-refit).
REFIT = False


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other user error."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        raise NoshowError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative (seeds are 0 or more)")
    return value


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        metavar="FILE",
        help="appointments CSV (plain or .gz); default: $NOSHOW_DATA, else synthetic data",
    )
    parser.add_argument("--encoding", default=None, metavar="NAME",
                        help="text encoding of the CSV files (default: detected: UTF-8, else Windows-1252)")
    parser.add_argument("--sep", default=None, metavar="CHAR",
                        help="field separator of the CSV files: ',' ';' or tab (default: detected from the header)")
    parser.add_argument("--schema", default=None, metavar="FILE",
                        help="schema file (TOML) naming the export's columns, outcome values, date formats and "
                             "covariates (noshow schema proposes one); default: the Kaggle layout, or the model's")


def _schema(args, model=None):
    """The schema files are read through: --schema, else the model's own; a --schema other than
    the one the model was trained through is refused (its features would not be the model's)."""
    from noshow.data.schema_file import read_schema

    given = read_schema(args.schema) if getattr(args, "schema", None) else None
    if model is None:
        return given
    recorded = model.schema
    if given is not None and (recorded is None or given.to_dict() != recorded.to_dict()):
        trained = "the Kaggle layout" if recorded is None else f"the schema {recorded.name!r} it records"
        raise NoshowError(f"{args.schema}: the model was trained through {trained}; files it scores are read "
                          f"the same way (drop --schema)")
    return recorded


def _load(args, path, schema, *, require_label: bool):
    """Load one data file given on the command line, through ``schema``."""
    from noshow.data import loader

    return loader.load(path, require_label=require_label, encoding=args.encoding, separator=args.sep, schema=schema)


def _resolve_data(args, *, require_label: bool = True, schema=None):
    """Load --data, else $NOSHOW_DATA, else synthetic data (saying so on stderr); through
    ``schema``, else --schema."""
    from noshow.data import loader, synth

    schema = schema if schema is not None else _schema(args)
    path = args.data or os.environ.get(loader.DATA_ENV)
    if path:
        return _load(args, path, schema, require_label=require_label)
    if schema is not None:
        raise NoshowError(f"--schema {args.schema}: give the export it describes with --data FILE")
    loaded = synth.synthetic_appointments()
    # Said even with --quiet: results on made-up data must never pass for real ones.
    print(f"noshow: no --data given and ${loader.DATA_ENV} unset: using {loaded.source}", file=sys.stderr)
    return loaded


# --------------------------------------------------------------------------------------------------
# Commands


def cmd_check(args) -> int:
    from noshow.data import summary as file_summary

    model = None
    if args.model:
        from noshow.model import TrainedModel

        model = TrainedModel.load(args.model)
    schema = _schema(args, model)
    loaded = _resolve_data(args, require_label=False, schema=schema)
    history = _load(args, args.history, schema, require_label=False) if args.history else None
    for source in (loaded, history) if model is not None else ():
        if source is not None:
            model.check_fits(source)
    summary = file_summary.summarize(loaded)
    report = None
    if model is not None:
        from noshow.clinic import drift

        report = drift.check_scored(model, loaded, history)
        if report is None:
            raise NoshowError(f"{args.model}: the model recorded no training profile to compare with "
                              f"(trained out of core); retrain it in memory")
        summary["drift"] = report
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(file_summary.format_summary(summary))
        if report is not None:
            print(drift.format_table(report))
    return 0


def cmd_schema(args) -> int:
    from noshow.data.propose import write_proposal
    from noshow.files import check_writable_parent

    check_writable_parent(args.out)
    result = write_proposal(args.data, args.out, args.encoding, args.sep)
    if result["ready"]:
        print(f"wrote {args.out}: roles {', '.join(result['roles'])}; covariates "
              f"{', '.join(result['covariates']) or 'none'}. Check every guess, then: "
              f"noshow check --data {args.data} --schema {args.out}")
    else:
        print(f"wrote {args.out}, which needs editing before use: {result['problem']}")
    return 0


def cmd_synth(args) -> int:
    from noshow.data import synth

    path = synth.write_synthetic(args.out, rows=args.rows, seed=args.seed)
    print(f"wrote {args.rows:,} synthetic appointments (seed {args.seed}) to {path}")
    return 0


def cmd_partition(args) -> int:
    from noshow.distributed.shard import write_partition

    manifest = write_partition(args.data, args.parts, args.out)
    print(f"wrote {sum(manifest['rows']):,} appointments of {args.data} as {args.parts} parts by patient "
          f"(smallest {min(manifest['rows']):,} rows, largest {max(manifest['rows']):,}) to {args.out}")
    return 0


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of widths") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: widths must be positive")
    return sizes


def _add_network(parser: argparse.ArgumentParser) -> None:
    """Hyperparameter flags; defaults come from MLPConfig so they are defined once."""
    from noshow.data.splits import SPLITS
    from noshow.nn import config as C

    net = parser.add_argument_group("network and training")
    # Every MLPConfig field is a flag, named after it, with its default: a new field needs no edit here.
    for spec in dataclasses.fields(C.MLPConfig):
        default = getattr(C.MLPConfig(), spec.name)
        options = {"default": default, "help": C.HELP.get(spec.name)}
        if spec.name in C.CHOICES:
            options["choices"] = C.CHOICES[spec.name]
        elif isinstance(default, tuple):
            options["type"] = _hidden
        elif spec.name == "seed":
            options["type"] = _non_negative_int
        elif isinstance(default, (int, float)) and spec.name != "pos_weight":
            options["type"] = type(default)
        net.add_argument("--" + spec.name.replace("_", "-"), **options)
    parser.add_argument("--split", choices=SPLITS, default="random")
    parser.add_argument("--split-seed", type=_non_negative_int, default=0)


def _config(args):
    from noshow.nn.config import MLPConfig

    pos_weight = args.pos_weight
    if pos_weight != "balanced":
        try:
            pos_weight = float(pos_weight)
        except ValueError:
            raise NoshowError(f"--pos-weight: {pos_weight!r} is neither a number nor 'balanced'") from None
    try:
        return MLPConfig(**{**{f.name: getattr(args, f.name) for f in dataclasses.fields(MLPConfig)},
                            "pos_weight": pos_weight})
    except ValueError as exc:
        raise NoshowError(str(exc)) from None


def _check_device(args) -> None:
    if args.device != "cpu" and getattr(args, "backend", "torch") == "numpy":
        raise NoshowError(f"--device {args.device}: the numpy backend runs on the CPU only")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise NoshowError(f"--device {args.device}: CUDA is not available on this machine")


def cmd_train(args) -> int:
    from noshow.data.prepare import prepare
    from noshow.files import check_writable_parent
    from noshow.training.allocator import keep_freed_memory
    from noshow.training.train import train_model

    check_writable_parent(args.out)
    config = _config(args)
    _check_device(args)
    from noshow.distributed.launch import detect

    streamed = args.stream or (args.data and os.path.isfile(args.data) and os.path.getsize(args.data) > STREAM_BYTES)
    if not streamed:  # streamed from disk, kept memory only raises the peak (training/allocator.py)
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
                                       schema=_schema(args))
        source, n_train = args.data, model.metadata["data"]["n_train"]
    else:
        loaded = _resolve_data(args)
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
    card = _write_card(model, args.out)
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


def _write_card(model, out) -> str:
    from noshow.clinic.card import card_path, write_card

    return str(write_card(model, card_path(out)))


def cmd_predict(args) -> int:
    import contextlib

    from noshow.clinic import drift, policies, scoring
    from noshow.data import loader
    from noshow.files import atomic_path, check_writable_parent
    from noshow.model import TrainedModel

    check_writable_parent(args.out)
    if args.html:
        check_writable_parent(args.html)
    _check_store_flags(args)
    if args.call_effect == MEASURED_EFFECT:
        args.call_effect = _measured_effect(args.db)
    policy = policies.make_policy(**{name: getattr(args, name) for name in policies.POLICY_FLAGS})
    _check_device(args)
    model = TrainedModel.load(args.model)
    schema = _schema(args, model)
    if args.stream or _is_large(args.data):
        return _predict_streamed(args, model, policy)
    loaded = _resolve_data(args, require_label=False, schema=schema)
    history = _load(args, args.history, schema, require_label=False) if args.history else None
    for source in (loaded, history):
        if source is not None:
            model.check_fits(source)
    for source in (loaded, history):
        duplicates = source is not None and loader.describe_duplicates(source)
        if duplicates:
            print(f"noshow: warning: {duplicates}; each is scored as given", file=sys.stderr)
    if not loaded.has_label and history is None and not args.quiet:
        print("noshow: note: no outcomes in the data and no --history: prior no-shows count as 0",
              file=sys.stderr)
    scores = scoring.score(model, loaded, history, policy, args.backend, args.device, reasons=args.reasons)
    drifted = drift.check_scored(model, loaded, history)
    if args.db:
        scores = _issue(args, scores, model, loaded, policy, drifted)
    for warning in drifted["warnings"] if drifted else []:
        print(f"noshow: warning: {warning}", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        scores.write_csv(stack.enter_context(atomic_path(args.out)))
        if args.html:
            from noshow.clinic.call_list import write_call_list

            write_call_list(scores, stack.enter_context(atomic_path(args.html)), policy.describe(model.threshold),
                            title=f"Call list: {os.path.basename(loaded.source)}")
    if not args.quiet:
        info = scoring.summary(scores, policy, model.threshold)
        benefit = (f"; expected net benefit of the list {info['expected_net_benefit']:,.2f}"
                   if "expected_net_benefit" in info else "")
        html = f" and {args.html}" if args.html else ""
        print(f"scored {info['rows']:,} appointments on {info['days']} day(s) with {args.backend}: "
              f"{info['flagged']:,} flagged ({info['rule']}){benefit}; wrote {args.out}{html}")
    return 0


MEASURED_EFFECT = "measured"  # --call-effect measured: the store's estimate from its randomised holdout


def _call_effect(text: str) -> float | str:
    if text == MEASURED_EFFECT:
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor 'measured'") from None


def _check_store_flags(args) -> None:
    from noshow.store.holdout import check_share

    if not args.db:
        for flag in ("holdout_share", "holdout_seed"):
            if getattr(args, flag) is not None:
                raise NoshowError(f"--{flag.replace('_', '-')}: needs --db (the holdout is recorded in the store)")
        if args.call_effect == MEASURED_EFFECT:
            raise NoshowError("--call-effect measured: needs --db, the store whose randomised holdout measured it")
    check_share(args.holdout_share, args.holdout_seed)
    if args.db and args.stream:
        raise NoshowError("--db: lists scored streamed from disk are not recorded; drop --stream or --db")


def _measured_effect(db: str) -> float:
    from noshow.store import effect
    from noshow.store.database import open_store

    estimate = effect.stored_estimate(open_store(db))
    print(f"noshow: call effect measured in {db}: E = {estimate['E']:.3f} "
          f"(95% CI {estimate['E_ci'][0]:.3f} to {estimate['E_ci'][1]:.3f}, {estimate['method']})", file=sys.stderr)
    if estimate["E_ci"][0] <= 0:
        print("noshow: warning: the measured effect's interval includes no effect at all; the list rests on an "
              "imprecise E (keep the holdout until the interval narrows)", file=sys.stderr)
    return min(max(estimate["E"], 0.0), 1.0)


def _issue(args, scores, model, loaded, policy, drifted=None):
    """Record the scores as the day lists in ``--db``; the rows as issued (holdout, do-not-call)."""
    from noshow.store.database import open_store
    from noshow.store.repository import ModelFacts, issue_lists

    issued = issue_lists(open_store(args.db), scores, ModelFacts.of(args.model, model), policy.name,
                         policy.describe(model.threshold),
                         args.user, loaded.sha256, args.holdout_share, args.holdout_seed, drifted)
    if args.holdout_share and not args.quiet:
        print(f"noshow: randomised holdout: {issued.held_out:,} flagged appointment(s) set aside, not to be called "
              f"(share {args.holdout_share:g}, seed {args.holdout_seed})", file=sys.stderr)
    if issued.do_not_call:
        print(f"noshow: {issued.do_not_call:,} flagged appointment(s) left off: the patient asked not to be called",
              file=sys.stderr)
    if issued.already_called:
        print(f"noshow: warning: {issued.already_called:,} appointment(s) on this list were already called "
              f"(see their calls before calling again)", file=sys.stderr)
    if not args.quiet:
        print(f"noshow: recorded {len(issued.list_ids)} day list(s) in {args.db}", file=sys.stderr)
    return issued.scores


def _add_store(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("--db", required=required, metavar="DB",
                        help="the clinic's store: an SQLite file (created if new, e.g. noshow.db) or a postgresql:// URL")


def _current_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def cmd_users(args) -> int:
    from noshow.store.database import open_store
    from noshow.store.repository import add_user

    token = add_user(open_store(args.db), args.name, args.role)
    print(f"added {args.role} {args.name!r}; their token, shown only now (the store keeps a hash):\n{token}")
    return 0


def cmd_outcomes(args) -> int:
    from noshow.data import schema as S
    from noshow.store.database import open_store
    from noshow.store.repository import record_bookings, record_outcomes

    if not args.data:
        raise NoshowError("outcomes needs --data EXPORT.csv: the clinic's later export, with its No-show column")
    loaded = _resolve_data(args, require_label=True)
    frame = loaded.frame
    store = open_store(args.db)
    done = record_outcomes(store, frame[S.APPOINTMENT_ID].to_numpy(), frame[S.TARGET].to_numpy(), loaded.sha256)
    booked = record_bookings(store, frame, loaded.sha256)
    print(f"outcomes from {loaded.source}: {done.new:,} new, {done.unchanged:,} already recorded, "
          f"{done.unknown:,} not on any recorded list (not stored), {len(done.conflicts):,} conflicting; "
          f"{booked:,} new booking(s) for listed days kept (to count refilled slots)")
    for appointment, stored, given in done.conflicts[:20]:
        print(f"noshow: warning: appointment {appointment}: stored {'missed' if stored else 'attended'}, the export "
              f"says {'missed' if given else 'attended'}; kept as stored", file=sys.stderr)
    if len(done.conflicts) > 20:
        print(f"noshow: warning: {len(done.conflicts) - 20:,} more conflicts not shown", file=sys.stderr)
    return 0


def cmd_monitor(args) -> int:
    from noshow.store import monitor
    from noshow.store.database import open_store
    from noshow.store.monitor_report import write_monitor

    result = monitor.monitor(open_store(args.db))
    written = write_monitor(result, args.out)
    for warning in result["warnings"]:
        print(f"noshow: warning: {warning}", file=sys.stderr)
    s, randomised = result["summary"], result["effect"]["randomised"]
    effect = (f"; call effect E = {randomised['E']:.3f} (95% CI {randomised['E_ci'][0]:.3f} to {randomised['E_ci'][1]:.3f}, "
              f"randomised)" if randomised else "; no randomised estimate of the call's effect")
    print(f"monitored {s['days']} day(s), {s['appointments']:,} appointments ({s['with_outcome']:,} with outcomes){effect}; "
          f"wrote {', '.join(map(str, written))}")
    return 0


def cmd_db(args) -> int:
    from noshow.store.database import open_store

    engine = open_store(args.db)
    if args.db_command == "export":
        from noshow.store.export import export_tables

        written = export_tables(engine, args.out)
        tables = ", ".join(f"{t} ({n:,} rows)" for t, n in written.items())
        print(f"wrote {len(written)} tables as Parquet to {args.out}: {tables}")
    else:
        from noshow.store.repository import mark_do_not_call

        marked = mark_do_not_call(engine, args.patient, args.user, args.note)
        print(f"patient {args.patient}: {'marked' if marked else 'already marked'} do not call; later lists leave them off")
    return 0


def _is_large(path: str | None) -> bool:
    return bool(path) and os.path.isfile(path) and os.path.getsize(path) > STREAM_BYTES


def _predict_streamed(args, model, policy) -> int:
    from noshow.clinic.scoring_stream import predict_file

    if not args.data:
        raise NoshowError("--stream needs --data FILE")
    if args.html:
        raise NoshowError("--html: the printable call list is not made for streamed scoring; drop --stream or --html")
    info = predict_file(model, args.data, args.out, args.history, policy, args.backend, args.device,
                        reasons=args.reasons)
    if not args.quiet:
        benefit = (f"; expected net benefit of the list {info['expected_net_benefit']:,.2f}"
                   if "expected_net_benefit" in info else "")
        print(f"scored {info['rows']:,} appointments on {info['days']} day(s) with {args.backend} (streamed, "
              f"whole days at a time): {info['flagged']:,} flagged ({info['rule']}){benefit}; wrote {args.out}")
    return 0


def cmd_export(args) -> int:
    from noshow.model import TrainedModel
    from noshow.onnx_export import export_onnx

    model = TrainedModel.load(args.model)
    written = export_onnx(model, args.onnx)
    if not args.quiet:
        print(f"wrote {written}: {model.config.members} network(s), their mean and the {model.calibrator.method} "
              f"calibration map, from {model.n_inputs} scaled features to P(no-show)")
    return 0


def cmd_compare(args) -> int:
    from pathlib import Path

    from noshow.evaluation import report
    from noshow.evaluation.compare import compare
    from noshow.files import atomic_folder

    config = _config(args)
    _check_device(args)
    out = Path(args.out)
    with atomic_folder(out, report.METRICS_FILE) as tmp:  # checks the folder before the minutes of training
        loaded = _resolve_data(args)
        metrics, curves = compare(loaded, config, args.split, args.split_seed, args.seeds, args.threads,
                                  args.device, progress=not args.quiet, side_by_side=not args.one_at_a_time)
        written = report.write_report(metrics, curves, tmp)
    if not args.quiet:
        print(report.console_summary(metrics))
        origin = " (SYNTHETIC DATA)" if loaded.synthetic else ""
        print(f"\nwrote {len(written)} files to {out}/ in {metrics['compare_seconds']:.0f} s{origin}; "
              f"open {out / 'report.html'}")
    return 0


def cmd_tune(args) -> int:
    from noshow.data.prepare import prepare
    from noshow.files import check_writable_parent, write_json
    from noshow.training import tune
    from noshow.training.allocator import keep_freed_memory

    try:
        import optuna  # noqa: F401
    except ImportError:
        raise NoshowError("tune needs Optuna, an optional dependency: pip install 'noshow[tune]'") from None
    check_writable_parent(args.out)
    config = _config(args)
    keep_freed_memory()
    loaded = _resolve_data(args)
    prepared = prepare(loaded, args.split, args.split_seed, config.dtype)
    result = tune.tune(prepared, config, args.trials, args.seeds, args.timeout, progress=not args.quiet)
    write_json(args.out, result, indent=1)
    if not args.quiet:
        best, baseline = result["best"], result["baseline"]
        print(f"{len(result['trials'])} trials on {loaded.source} ({args.split} split, validation rows only): "
              f"best validation PR AUC {best['val_pr_auc']:.4f} (trial {best['number']}) against "
              f"{baseline['val_pr_auc']:.4f} for the current settings; wrote {args.out}\n"
              f"train with: noshow train {tune.flags(best['params'])}")
    return 0


def _row_counts(text: str) -> list[int]:
    try:
        counts = [int(float(part)) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of row counts") from None
    if min(counts) < 1000:
        raise argparse.ArgumentTypeError("row counts must be at least 1000")
    return counts


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def cmd_serve(args) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise NoshowError("serve needs FastAPI and uvicorn, an optional extra: pip install 'noshow[serve]'") from None
    from noshow.serve.run import TOKEN_ENV, serve
    from noshow.serve.service import Settings

    _check_device(args)
    if args.schema:  # the service reads requests through the model's schema; a --schema must be it
        from noshow.model import TrainedModel

        _schema(args, TrainedModel.load(args.model))
    from noshow.store.holdout import check_share

    check_share(args.holdout_share, args.holdout_seed)
    if args.holdout_share is not None and not args.db:
        raise NoshowError("--holdout-share: needs --db (the holdout is recorded in the store)")
    settings = Settings(args.model, args.history, args.backend, args.device, args.token or os.environ.get(TOKEN_ENV) or None,
                        args.max_body_mb, db=args.db, holdout_share=args.holdout_share, holdout_seed=args.holdout_seed)
    serve(settings, args.host, args.port, args.workers, access_log=not args.no_access_log)
    return 0


def cmd_bench(args) -> int:
    from pathlib import Path

    from noshow.evaluation import bench
    from noshow.training.allocator import keep_freed_memory

    # MLPClassifier trains in this process: it gets the allocator setting the twins' workers use.
    keep_freed_memory()
    threads = args.threads or os.cpu_count() or 1
    if args.merge:
        if not args.scale:
            raise NoshowError("--merge needs --scale (it measures only the runs at scale)")
        bench.saved_bench(Path(args.merge))  # a bad file stops the run before the long measurements
        result = bench.scale_results(args.scale, threads, bench.reporter(not args.quiet))
        written = bench.merge_scale(result, Path(args.merge))
        lines = bench.scale_summary(result)
    else:
        loaded = _resolve_data(args)
        result = bench.run_bench(loaded, threads, args.repeats, args.scale, progress=not args.quiet)
        written = bench.write(result, Path(args.out))
        lines = [bench.summary(result)]
    if not args.quiet:
        print("\n".join(lines))
        print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _add_scoring(parser: argparse.ArgumentParser) -> None:
    """What scoring needs, for predict and serve: the model, the history, who computes."""
    from noshow.training import BACKENDS

    parser.add_argument("--model", required=True, metavar="MODEL.npz")
    parser.add_argument("--history", metavar="FILE", help="the patients' other appointments for their history: "
                        "earlier ones with outcomes, later ones already booked")
    parser.add_argument("--backend", choices=BACKENDS, default="numpy")
    parser.add_argument("--device", default="cpu")


def build_parser() -> argparse.ArgumentParser:
    from noshow.clinic.policies import add_policy_arguments
    from noshow.clinic.scoring import REASON_ROWS
    from noshow.training import BACKENDS

    parser = _Parser(prog="noshow", description=__doc__.splitlines()[0])
    from noshow import __version__

    parser.add_argument("--version", action="version", version=f"noshow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = commands.add_parser("check", help="validate an appointments file and summarise it")
    _add_data(check)
    check.add_argument("--json", action="store_true", help="print the summary as JSON")
    check.add_argument("--model", metavar="MODEL.npz", help="also compare the file with the model's training data (drift)")
    check.add_argument("--history", metavar="FILE", help="the patients' other appointments, as for predict")
    check.set_defaults(run=cmd_check)

    schema = commands.add_parser("schema", help="propose a schema file for a clinic's own export, to check and correct")
    schema.add_argument("--data", required=True, metavar="FILE", help="the export (CSV, plain or .gz)")
    schema.add_argument("--out", required=True, metavar="SCHEMA.toml")
    schema.add_argument("--encoding", default=None, metavar="NAME", help="text encoding (default: detected)")
    schema.add_argument("--sep", default=None, metavar="CHAR", help="field separator (default: the header's most frequent)")
    schema.set_defaults(run=cmd_schema)

    synth = commands.add_parser("synth", help="write synthetic appointments with true probabilities")
    synth.add_argument("--rows", type=_positive_int, default=100_000)
    synth.add_argument("--seed", type=_non_negative_int, default=2016)
    synth.add_argument("--out", required=True, metavar="FILE", help="CSV to write (.gz compresses)")
    synth.set_defaults(run=cmd_synth)

    partition = commands.add_parser("partition", help="split a CSV by patient into Parquet parts for data-parallel training")
    partition.add_argument("--data", required=True, metavar="FILE", help="appointments CSV (UTF-8, comma-separated; .gz allowed)")
    partition.add_argument("--parts", type=_positive_int, default=64,
                           help="number of parts; any number of processes that divides it can train from the folder")
    partition.add_argument("--out", required=True, metavar="FOLDER")
    partition.set_defaults(run=cmd_partition)

    train = commands.add_parser("train", help="train a model (NumPy or PyTorch twin) and save it")
    _add_data(train)
    train.add_argument("--backend", choices=BACKENDS, default="numpy")
    train.add_argument("--device", default="cpu", help="torch device: cpu or cuda[:N]")
    train.add_argument("--out", required=True, metavar="MODEL.npz")
    train.add_argument("--quiet", action="store_true")
    train.add_argument("--stream", action="store_true",
                       help="build features out of core and train from disk in chunks (automatic above 1 GB)")
    train.add_argument("--db", metavar="DB", help="the clinic's store: leave out the appointments it records as acted "
                       "on (listed to call, or called), whose outcomes the calls changed")
    train.add_argument("--timeout", type=_positive_int, default=600, metavar="SECONDS",
                       help="under torchrun: how long a process waits for its peers before it gives up")
    train.add_argument("--refit", action=argparse.BooleanOptionalAction, default=None,
                       help="after early stopping, train each network afresh on training + validation rows for "
                            "its chosen epoch count; calibration and threshold stay the validation ones "
                            f"(default: {'on' if REFIT else 'off'}; not with --stream)")
    _add_network(train)
    train.set_defaults(run=cmd_train)

    predict = commands.add_parser("predict", help="score appointments with a saved model")
    _add_scoring(predict)
    _add_data(predict)
    predict.add_argument("--out", required=True, metavar="SCORES.csv")
    predict.add_argument("--quiet", action="store_true")
    add_policy_arguments(predict)
    predict.add_argument("--html", metavar="FILE", help="also write a printable call list (HTML), one section per day")
    predict.add_argument("--reasons", choices=REASON_ROWS, default="all",
                         help="which rows get reasons: every row (default), the flagged ones (the others' cell is "
                         "empty), or none; reasons cost most of the scoring time")
    predict.add_argument("--stream", action="store_true",
                         help="score a file larger than memory, whole days at a time (automatic above 1 GB)")
    _add_store(predict)
    predict.add_argument("--user", default=_current_user(), help="who issues the list, as recorded (default: the login name)")
    predict.add_argument("--holdout-share", type=float, default=None, metavar="S",
                         help="with --db: set aside this share of each day's flagged appointments, drawn at random, "
                              "not to be called (measures the call's effect)")
    predict.add_argument("--holdout-seed", type=_non_negative_int, default=None, metavar="N", help="the holdout's recorded seed")
    effect = next(a for a in predict._actions if a.dest == "call_effect")
    effect.type, effect.help = _call_effect, effect.help + "; 'measured': the estimate from --db's randomised holdout"
    predict.set_defaults(run=cmd_predict)

    compare = commands.add_parser("compare", help="train both twins and references, write the report")
    _add_data(compare)
    compare.add_argument("--out", default="noshow-report", metavar="DIR", help="report folder (default noshow-report)")
    compare.add_argument("--seeds", type=_positive_int, default=1, help="training seeds per model (mean ± std)")
    compare.add_argument("--threads", type=_positive_int, default=None,
                         help="threads per twin (default: half the CPUs each, all with --one-at-a-time)")
    compare.add_argument("--one-at-a-time", action="store_true",
                         help="train the twins one after the other, not side by side (slower; timings of a twin alone)")
    compare.add_argument("--device", default="cpu", help="device of the PyTorch twin: cpu or cuda[:N]")
    compare.add_argument("--quiet", action="store_true")
    _add_network(compare)
    compare.set_defaults(run=cmd_compare)

    export = commands.add_parser("export", help="write a model file as one ONNX graph (noshow[onnx])")
    export.add_argument("--model", required=True, metavar="MODEL.npz")
    export.add_argument("--onnx", required=True, metavar="MODEL.onnx")
    export.add_argument("--quiet", action="store_true")
    export.set_defaults(run=cmd_export)

    tune = commands.add_parser("tune", help="search hyperparameters on validation data (Optuna); write the best")
    _add_data(tune)
    tune.add_argument("--trials", type=_positive_int, default=30, help="settings to try (the first is the current one)")
    tune.add_argument("--seeds", type=_positive_int, default=2, help="seeds per trial; the score is their mean")
    tune.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    tune.add_argument("--out", default="tune.json", metavar="FILE", help="results (default tune.json)")
    tune.add_argument("--quiet", action="store_true")
    _add_network(tune)
    tune.set_defaults(run=cmd_tune)

    bench = commands.add_parser("bench", help="measure speed and memory of the twins; write bench.json")
    _add_data(bench)
    bench.add_argument("--out", default="bench-out", metavar="DIR")
    bench.add_argument("--threads", type=_positive_int, default=None, help="threads for every measurement (default: all CPUs)")
    bench.add_argument("--repeats", type=_positive_int, default=5, help="runs per timing; the median is kept")
    bench.add_argument("--scale", type=_row_counts, default=None, metavar="N,N,...",
                       help="also write, train streamed from disk and score synthetic data of these sizes, e.g. 1e5,1e6,1e7")
    bench.add_argument("--merge", metavar="BENCH.json",
                       help="measure only --scale and put it into this saved bench.json, keeping its other "
                            "measurements (bench.png beside it is redrawn)")
    bench.add_argument("--quiet", action="store_true")
    bench.set_defaults(run=cmd_bench)

    serve = commands.add_parser("serve", help="serve a model over HTTP: scoring API and a call-list page for staff")
    _add_scoring(serve)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only; any other needs a token)")
    serve.add_argument("--port", type=_positive_int, default=8000)
    serve.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' (default: $NOSHOW_TOKEN)")
    serve.add_argument("--workers", type=_positive_int, default=1, help="uvicorn worker processes, each with the model")
    serve.add_argument("--max-body-mb", type=_positive_float, default=10.0, metavar="MB",
                       help="largest request body accepted (default 10 MB); larger ones get 413")
    serve.add_argument("--no-access-log", action="store_true", help="do not log requests (paths and status only anyway)")
    serve.add_argument("--schema", default=None, metavar="FILE",
                       help="the schema file the model was trained through (checked; requests are read through "
                            "the schema the model records)")
    _add_store(serve)
    serve.add_argument("--holdout-share", type=float, default=None, metavar="S",
                       help="with --db: set aside this share of each day's flagged appointments at random, not to be called")
    serve.add_argument("--holdout-seed", type=_non_negative_int, default=None, metavar="N", help="the holdout's recorded seed")
    serve.set_defaults(run=cmd_serve)

    users = commands.add_parser("users", help="people who use the service: noshow users add NAME --role caller|analyst")
    users_commands = users.add_subparsers(dest="users_command", required=True, parser_class=_Parser)
    add = users_commands.add_parser("add", help="add a user and print their token (once)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("caller", "analyst"),
                     help="callers record calls; analysts also read the monitor and download lists")
    _add_store(add, required=True)
    users.set_defaults(run=cmd_users)

    outcomes = commands.add_parser("outcomes", help="record attended/missed from a later export for the listed appointments")
    _add_data(outcomes)
    _add_store(outcomes, required=True)
    outcomes.set_defaults(run=cmd_outcomes)

    monitor = commands.add_parser("monitor", help="realised performance of the recorded lists and the call's effect")
    _add_store(monitor, required=True)
    monitor.add_argument("--out", default="noshow-monitor", metavar="DIR", help="folder for monitor.html and monitor.json")
    monitor.set_defaults(run=cmd_monitor)

    db = commands.add_parser("db", help="the store: export its tables, mark a patient do-not-call")
    db_commands = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    export = db_commands.add_parser("export", help="write every table as Parquet")
    _add_store(export, required=True)
    export.add_argument("--out", required=True, metavar="DIR")
    dnc = db_commands.add_parser("do-not-call", help="mark a patient whom no later list may call")
    _add_store(dnc, required=True)
    dnc.add_argument("--patient", required=True, metavar="PATIENT_ID")
    dnc.add_argument("--note", default="")
    dnc.add_argument("--user", default=_current_user())
    db.set_defaults(run=cmd_db)

    return parser


def _one_line(text: str) -> str:
    """``text`` with every character that is not printable (line breaks, vertical tabs, NUL, escape
    sequences from a file's bytes) written as its escape, so that an error is always one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


PEER_GRACE_S = 5.0  # how long a silent process waits before it exits, so that rank 0 says the error


def _says_errors(exc: NoshowError) -> bool:
    """Whether this process prints ``exc``: in a data-parallel run every process meets the same
    user error, and rank 0 alone says it (the others wait :data:`PEER_GRACE_S` before they exit,
    since a launcher stops every process once one has ended); a process's own failure it says itself."""
    from noshow.distributed.launch import detect
    from noshow.errors import ProcessError

    launch = detect()
    return launch is None or launch.rank == 0 or isinstance(exc, ProcessError)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except NoshowError as exc:
        if _says_errors(exc):
            print(f"noshow: error: {_one_line(str(exc))}", file=sys.stderr)
        else:
            time.sleep(PEER_GRACE_S)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("noshow: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
