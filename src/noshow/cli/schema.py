"""``noshow schema``: propose a schema file for a clinic's own export."""

from __future__ import annotations


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


def add_parser(commands) -> None:
    schema = commands.add_parser("schema", help="propose a schema file for a clinic's own export, to check and correct")
    schema.add_argument("--data", required=True, metavar="FILE", help="the export (CSV, plain or .gz)")
    schema.add_argument("--out", required=True, metavar="SCHEMA.toml")
    schema.add_argument("--encoding", default=None, metavar="NAME", help="text encoding (default: detected)")
    schema.add_argument("--sep", default=None, metavar="CHAR", help="field separator (default: the header's most frequent)")
    schema.set_defaults(run=cmd_schema)
