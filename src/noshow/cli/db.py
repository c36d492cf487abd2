"""``noshow db``: the store's tables as Parquet; a patient marked do-not-call."""

from __future__ import annotations

from noshow.cli import common
from noshow.cli.common import Parser, current_user


def cmd_db(args) -> int:
    from noshow.store.database import open_store

    engine = open_store(args.db)
    if args.db_command == "export":
        from noshow.store.export import export_tables

        written = export_tables(engine, args.out)
        tables = ", ".join(f"{t} ({n:,} rows)" for t, n in written.items())
        print(f"wrote {len(written)} tables as Parquet to {args.out}: {tables}")
    else:
        from noshow.store.repository import mark_do_not_call

        marked = mark_do_not_call(engine, args.patient, args.user, args.note)
        print(f"patient {args.patient}: {'marked' if marked else 'already marked'} do not call; later lists leave them off")
    return 0


def add_parser(commands) -> None:
    db = commands.add_parser("db", help="the store: export its tables, mark a patient do-not-call")
    db_commands = db.add_subparsers(dest="db_command", required=True, parser_class=Parser)
    export = db_commands.add_parser("export", parents=[common.store_flags(required=True)], help="write every table as Parquet")
    export.add_argument("--out", required=True, metavar="DIR")
    dnc = db_commands.add_parser("do-not-call", parents=[common.store_flags(required=True)],
                                 help="mark a patient whom no later list may call")
    dnc.add_argument("--patient", required=True, metavar="PATIENT_ID")
    dnc.add_argument("--note", default="")
    dnc.add_argument("--user", default=current_user())
    db.set_defaults(run=cmd_db)
