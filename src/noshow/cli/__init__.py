"""The ``noshow`` command line: parsing and messages only; the work lives in the library modules.

One module per command (``check``, ``train``, ``predict``, ...), each with its ``cmd_*`` and its
``add_parser``; the flags several commands share are parent parsers in :mod:`~noshow.cli.common`.
A user's mistake (a :class:`~noshow.errors.NoshowError`, or a bad flag caught by argparse) prints
one line ``noshow: error: ...`` on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import sys
import time

from noshow.cli import (
    bench,
    check,
    common,
    compare,
    db,
    export,
    monitor,
    outcomes,
    partition,
    predict,
    schema,
    serve,
    synth,
    train,
    tune,
    users,
)
from noshow.errors import NoshowError

COMMANDS = (check, schema, synth, partition, train, predict, compare, export, tune, bench, serve, users, outcomes,
            monitor, db)  # in the order ``noshow --help`` lists them


EXIT_USAGE = 2


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



def build_parser() -> common.Parser:
    from noshow import __version__

    parser = common.Parser(prog="noshow", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"noshow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=common.Parser)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


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


__all__ = ["build_parser", "main"]
