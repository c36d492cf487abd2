"""``noshow synth``: write synthetic appointments with their true probabilities."""

from __future__ import annotations

from noshow.cli.common import non_negative_int, positive_int


def cmd_synth(args) -> int:
    from noshow.data import synth

    path = synth.write_synthetic(args.out, rows=args.rows, seed=args.seed)
    print(f"wrote {args.rows:,} synthetic appointments (seed {args.seed}) to {path}")
    return 0


def add_parser(commands) -> None:
    synth = commands.add_parser("synth", help="write synthetic appointments with true probabilities")
    synth.add_argument("--rows", type=positive_int, default=100_000)
    synth.add_argument("--seed", type=non_negative_int, default=2016)
    synth.add_argument("--out", required=True, metavar="FILE", help="CSV to write (.gz compresses)")
    synth.set_defaults(run=cmd_synth)
