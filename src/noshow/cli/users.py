"""``noshow users add``: a person's own token for the service."""

from __future__ import annotations

from noshow.cli import common
from noshow.cli.common import Parser


def cmd_users(args) -> int:
    from noshow.store.database import open_store
    from noshow.store.repository import add_user

    token = add_user(open_store(args.db), args.name, args.role)
    print(f"added {args.role} {args.name!r}; their token, shown only now (the store keeps a hash):\n{token}")
    return 0


def add_parser(commands) -> None:
    users = commands.add_parser("users", help="people who use the service: noshow users add NAME --role caller|analyst")
    users_commands = users.add_subparsers(dest="users_command", required=True, parser_class=Parser)
    add = users_commands.add_parser("add", parents=[common.store_flags(required=True)],
                                    help="add a user and print their token (once)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("caller", "analyst"),
                     help="callers record calls; analysts also read the monitor and download lists")
    users.set_defaults(run=cmd_users)
