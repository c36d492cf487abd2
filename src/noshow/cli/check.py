"""``noshow check``: validate an appointments file and summarise it; with a model, its drift."""

from __future__ import annotations

import json

from noshow.cli import common
from noshow.cli.common import load, resolve_data, schema_of
from noshow.errors import NoshowError


def cmd_check(args) -> int:
    from noshow.data import summary as file_summary

    model = None
    if args.model:
        from noshow.model import TrainedModel

        model = TrainedModel.load(args.model)
    schema = schema_of(args, model)
    loaded = resolve_data(args, require_label=False, schema=schema)
    history = load(args, args.history, schema, require_label=False) if args.history else None
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


def add_parser(commands) -> None:
    check = commands.add_parser("check", parents=[common.data_flags()], help="validate an appointments file and summarise it")
    check.add_argument("--json", action="store_true", help="print the summary as JSON")
    check.add_argument("--model", metavar="MODEL.npz", help="also compare the file with the model's training data (drift)")
    check.add_argument("--history", metavar="FILE", help="the patients' other appointments, as for predict")
    check.set_defaults(run=cmd_check)
