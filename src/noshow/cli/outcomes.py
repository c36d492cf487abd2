"""``noshow outcomes``: attended or missed, from a later export, for the appointments the store listed."""

from __future__ import annotations

import sys

from noshow.cli import common
from noshow.cli.common import resolve_data
from noshow.errors import NoshowError


def cmd_outcomes(args) -> int:
    from noshow.data import schema as S
    from noshow.store.database import open_store
    from noshow.store.repository import record_bookings, record_outcomes

    if not args.data:
        raise NoshowError("outcomes needs --data EXPORT.csv: the clinic's later export, with its No-show column")
    loaded = resolve_data(args, require_label=True)
    frame = loaded.frame
    store = open_store(args.db)
    done = record_outcomes(store, frame[S.APPOINTMENT_ID].to_numpy(), frame[S.TARGET].to_numpy(), loaded.sha256)
    booked = record_bookings(store, frame, loaded.sha256)
    print(f"outcomes from {loaded.source}: {done.new:,} new, {done.unchanged:,} already recorded, "
          f"{done.unknown:,} not on any recorded list (not stored), {len(done.conflicts):,} conflicting; "
          f"{booked:,} new booking(s) for listed days kept (to count refilled slots)")
    for appointment, stored, given in done.conflicts[:20]:
        print(f"noshow: warning: appointment {appointment}: stored {'missed' if stored else 'attended'}, the export "
              f"says {'missed' if given else 'attended'}; kept as stored", file=sys.stderr)
    if len(done.conflicts) > 20:
        print(f"noshow: warning: {len(done.conflicts) - 20:,} more conflicts not shown", file=sys.stderr)
    return 0


def add_parser(commands) -> None:
    outcomes = commands.add_parser("outcomes", parents=[common.data_flags(), common.store_flags(required=True)],
                                   help="record attended/missed from a later export for the listed appointments")
    outcomes.set_defaults(run=cmd_outcomes)
