"""``noshow-torchrun``: PyTorch's own ``torchrun``, with failures said in one line.

It takes torchrun's arguments unchanged and runs torchrun's launcher (``torch.distributed.run``);
what it adds is the ending. Plain torchrun answers a failed worker with its ``ChildFailedError``
report and a traceback, and a taken port with a traceback from the rendezvous; here each becomes
one ``noshow: error:`` line and exit status 2 (a worker that stopped on a user error has already
said its own line, and the launcher adds nothing). Training is the same under either launcher.
"""

from __future__ import annotations

import logging
import signal
import sys

EXIT_USAGE = 2


def _quiet_launcher_logs() -> None:
    """torchrun's agent logs each failure (and a note on OMP_NUM_THREADS) at WARNING and ERROR;
    the one-line ending below replaces them."""
    for name in ("torch.distributed.run", "torch.distributed.elastic", "torch.distributed.launcher"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _describe(failures: dict) -> str | None:
    """One line for a run whose workers failed; None when each said its own error already."""
    # The agent stops the other workers with SIGTERM once one fails: those are not the cause.
    causes = {r: f for r, f in failures.items() if f.exitcode != -signal.SIGTERM} or failures
    if all(f.exitcode == EXIT_USAGE for f in causes.values()):
        return None  # stopped on a user error, which the worker has said
    parts = []
    for rank, failure in sorted(causes.items()):
        code = failure.exitcode
        how = f"killed by {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals() else f"exit status {code}"
        parts.append(f"rank {rank} {how}")
    return "a process of the run failed (" + "; ".join(parts) + "); the others were stopped"


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    _quiet_launcher_logs()
    args = parse_args(argv)
    try:
        run(args)
    except ChildFailedError as exc:
        line = _describe(exc.failures)
        if line:
            print(f"noshow: error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # the rendezvous: a port in use, an unreachable master
        where = f"{args.master_addr or '127.0.0.1'}:{args.master_port}"
        text = str(exc).strip().splitlines()
        print(f"noshow: error: could not start the run's rendezvous at {where} "
              f"({type(exc).__name__}: {text[-1] if text else ''})", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
