"""``noshow predict``: score appointments with a saved model; the call list, recorded in the store
with ``--db``."""

from __future__ import annotations

import argparse
import os
import sys

from noshow.cli import common
from noshow.cli.common import check_device, current_user, is_large, load, non_negative_int, resolve_data, schema_of
from noshow.errors import NoshowError


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
    check_device(args)
    model = TrainedModel.load(args.model)
    schema = schema_of(args, model)
    if args.stream or is_large(args.data):
        return _predict_streamed(args, model, policy)
    loaded = resolve_data(args, require_label=False, schema=schema)
    history = load(args, args.history, schema, require_label=False) if args.history else None
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
        benefit = _benefit(info)
        html = f" and {args.html}" if args.html else ""
        print(f"scored {info['rows']:,} appointments on {info['days']} day(s) with {args.backend}: "
              f"{info['flagged']:,} flagged ({info['rule']}){benefit}; wrote {args.out}{html}")
    return 0


def _benefit(info: dict) -> str:
    """The cost policy's expected net benefit of the list, as said after scoring (else nothing)."""
    return f"; expected net benefit of the list {info['expected_net_benefit']:,.2f}" if "expected_net_benefit" in info else ""


MEASURED_EFFECT = "measured"  # --call-effect measured: the store's estimate from its randomised holdout


def call_effect(text: str) -> float | str:
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


def _predict_streamed(args, model, policy) -> int:
    from noshow.clinic.scoring_stream import predict_file

    if not args.data:
        raise NoshowError("--stream needs --data FILE")
    if args.html:
        raise NoshowError("--html: the printable call list is not made for streamed scoring; drop --stream or --html")
    info = predict_file(model, args.data, args.out, args.history, policy, args.backend, args.device,
                        reasons=args.reasons)
    if not args.quiet:
        benefit = _benefit(info)
        print(f"scored {info['rows']:,} appointments on {info['days']} day(s) with {args.backend} (streamed, "
              f"whole days at a time): {info['flagged']:,} flagged ({info['rule']}){benefit}; wrote {args.out}")
    return 0


def add_parser(commands) -> None:
    from noshow.clinic.policies import add_policy_arguments
    from noshow.clinic.scoring import REASON_ROWS

    predict = commands.add_parser("predict", parents=[common.scoring_flags(), common.data_flags(), common.store_flags()],
                                  help="score appointments with a saved model")
    predict.add_argument("--out", required=True, metavar="SCORES.csv")
    predict.add_argument("--quiet", action="store_true")
    add_policy_arguments(predict)
    predict.add_argument("--html", metavar="FILE", help="also write a printable call list (HTML), one section per day")
    predict.add_argument("--reasons", choices=REASON_ROWS, default="all",
                         help="which rows get reasons: every row (default), the flagged ones (the others' cell is "
                         "empty), or none; reasons cost most of the scoring time")
    predict.add_argument("--stream", action="store_true",
                         help="score a file larger than memory, whole days at a time (automatic above 1 GB)")
    predict.add_argument("--user", default=current_user(), help="who issues the list, as recorded (default: the login name)")
    predict.add_argument("--holdout-share", type=float, default=None, metavar="S",
                         help="with --db: set aside this share of each day's flagged appointments, drawn at random, "
                              "not to be called (measures the call's effect)")
    predict.add_argument("--holdout-seed", type=non_negative_int, default=None, metavar="N", help="the holdout's recorded seed")
    effect = next(a for a in predict._actions if a.dest == "call_effect")
    effect.type, effect.help = call_effect, effect.help + "; 'measured': the estimate from --db's randomised holdout"
    predict.set_defaults(run=cmd_predict)
