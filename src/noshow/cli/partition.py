"""``noshow partition``: split a file by patient into parts for data-parallel training."""

from __future__ import annotations

from noshow.cli.common import positive_int
from noshow.errors import NoshowError


def cmd_partition(args) -> int:
    from noshow.distributed.shard import write_partition

    if args.schema:
        from noshow.data.schema_file import read_schema

        read_schema(args.schema)  # a bad schema file is said as such first
        raise NoshowError(f"--schema {args.schema}: the parts are for data-parallel training, which reads the Kaggle "
                          f"layout only; train a clinic's export in one process (noshow train --data {args.data} "
                          f"--schema {args.schema})")
    manifest = write_partition(args.data, args.parts, args.out)
    print(f"wrote {sum(manifest['rows']):,} appointments of {args.data} as {args.parts} parts by patient "
          f"(smallest {min(manifest['rows']):,} rows, largest {max(manifest['rows']):,}) to {args.out}")
    return 0


def add_parser(commands) -> None:
    partition = commands.add_parser("partition", help="split a CSV by patient into Parquet parts for data-parallel training")
    partition.add_argument("--data", required=True, metavar="FILE", help="appointments CSV (UTF-8, comma-separated; .gz allowed)")
    partition.add_argument("--parts", type=positive_int, default=64,
                           help="number of parts; any number of processes that divides it can train from the folder")
    partition.add_argument("--out", required=True, metavar="FOLDER")
    partition.add_argument("--schema", default=None, metavar="FILE",
                           help="a clinic's schema file: refused, with the reason (data-parallel training reads the "
                                "Kaggle layout only)")
    partition.set_defaults(run=cmd_partition)
