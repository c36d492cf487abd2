"""The ``noshow`` command line: parsing and messages only; the work lives in the library modules.

A user's mistake (a :class:`~noshow.errors.NoshowError`, or a bad flag caught by argparse) prints
one line ``noshow: error: ...`` on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from noshow.errors import NoshowError

EXIT_USAGE = 2


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


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        metavar="FILE",
        help="appointments CSV (plain or .gz); default: $NOSHOW_DATA, else synthetic data",
    )


def _resolve_data(args, *, require_label: bool = True):
    """Load --data, else $NOSHOW_DATA, else synthetic data (saying so on stderr)."""
    from noshow import data, synth

    path = args.data or os.environ.get(data.DATA_ENV)
    if path:
        return data.load(path, require_label=require_label)
    loaded = synth.synthetic_appointments()
    if not getattr(args, "quiet", False):
        print(f"noshow: no --data given and ${data.DATA_ENV} unset: using {loaded.source}", file=sys.stderr)
    return loaded


# --------------------------------------------------------------------------------------------------
# Commands


def cmd_check(args) -> int:
    from noshow import data

    loaded = _resolve_data(args, require_label=False)
    summary = data.summarize(loaded)
    print(json.dumps(summary, indent=2) if args.json else data.format_summary(summary))
    return 0


def cmd_synth(args) -> int:
    from noshow import synth

    path = synth.write_synthetic(args.out, rows=args.rows, seed=args.seed)
    print(f"wrote {args.rows:,} synthetic appointments (seed {args.seed}) to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="noshow", description=__doc__.splitlines()[0])
    from noshow import __version__

    parser.add_argument("--version", action="version", version=f"noshow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = commands.add_parser("check", help="validate an appointments file and summarise it")
    _add_data(check)
    check.add_argument("--json", action="store_true", help="print the summary as JSON")
    check.set_defaults(run=cmd_check)

    synth = commands.add_parser("synth", help="write synthetic appointments with true probabilities")
    synth.add_argument("--rows", type=_positive_int, default=100_000)
    synth.add_argument("--seed", type=int, default=2016)
    synth.add_argument("--out", required=True, metavar="FILE", help="CSV to write (.gz compresses)")
    synth.set_defaults(run=cmd_synth)

    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except NoshowError as exc:
        print(f"noshow: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("noshow: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
