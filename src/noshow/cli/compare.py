"""``noshow compare``: train both twins and the references, write the comparison report."""

from __future__ import annotations

from noshow.cli import common
from noshow.cli.common import check_device, config_of, positive_int, resolve_data


def cmd_compare(args) -> int:
    from pathlib import Path

    from noshow.evaluation import report
    from noshow.evaluation.compare import compare
    from noshow.files import atomic_folder

    config = config_of(args)
    check_device(args)
    out = Path(args.out)
    with atomic_folder(out, report.METRICS_FILE) as tmp:  # checks the folder before the minutes of training
        loaded = resolve_data(args)
        metrics, curves = compare(loaded, config, args.split, args.split_seed, args.seeds, args.threads,
                                  args.device, progress=not args.quiet, side_by_side=not args.one_at_a_time)
        written = report.write_report(metrics, curves, tmp)
    if not args.quiet:
        print(report.console_summary(metrics))
        origin = " (SYNTHETIC DATA)" if loaded.synthetic else ""
        print(f"\nwrote {len(written)} files to {out}/ in {metrics['compare_seconds']:.0f} s{origin}; "
              f"open {out / 'report.html'}")
    return 0


def add_parser(commands) -> None:
    compare = commands.add_parser("compare", parents=[common.data_flags(), common.network_flags()],
                                  help="train both twins and references, write the report")
    compare.add_argument("--out", default="noshow-report", metavar="DIR", help="report folder (default noshow-report)")
    compare.add_argument("--seeds", type=positive_int, default=1, help="training seeds per model (mean ± std)")
    compare.add_argument("--threads", type=positive_int, default=None,
                         help="threads per twin (default: half the CPUs each, all with --one-at-a-time)")
    compare.add_argument("--one-at-a-time", action="store_true",
                         help="train the twins one after the other, not side by side (slower; timings of a twin alone)")
    compare.add_argument("--device", default="cpu", help="device of the PyTorch twin: cpu or cuda[:N]")
    compare.add_argument("--quiet", action="store_true")
    compare.set_defaults(run=cmd_compare)
