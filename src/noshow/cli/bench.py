"""``noshow bench``: measure the twins' speed and memory (and at scale); write bench.json."""

from __future__ import annotations

import os

from noshow.cli import common
from noshow.cli.common import positive_int, resolve_data, row_counts
from noshow.errors import NoshowError


def cmd_bench(args) -> int:
    from pathlib import Path

    from noshow.allocator import keep_freed_memory
    from noshow.benchmarks import suite as bench

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
        loaded = resolve_data(args)
        result = bench.run_bench(loaded, threads, args.repeats, args.scale, progress=not args.quiet)
        written = bench.write(result, Path(args.out))
        lines = [bench.summary(result)]
    if not args.quiet:
        print("\n".join(lines))
        print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def add_parser(commands) -> None:
    bench = commands.add_parser("bench", parents=[common.data_flags()],
                                help="measure speed and memory of the twins; write bench.json")
    bench.add_argument("--out", default="bench-out", metavar="DIR")
    bench.add_argument("--threads", type=positive_int, default=None, help="threads for every measurement (default: all CPUs)")
    bench.add_argument("--repeats", type=positive_int, default=5, help="runs per timing; the median is kept")
    bench.add_argument("--scale", type=row_counts, default=None, metavar="N,N,...",
                       help="also write, train streamed from disk and score synthetic data of these sizes, e.g. 1e5,1e6,1e7")
    bench.add_argument("--merge", metavar="BENCH.json",
                       help="measure only --scale and put it into this saved bench.json, keeping its other "
                            "measurements (bench.png beside it is redrawn)")
    bench.add_argument("--quiet", action="store_true")
    bench.set_defaults(run=cmd_bench)
