"""``noshow monitor``: realised performance of the recorded lists, and the call's effect."""

from __future__ import annotations

import sys

from noshow.cli import common


def cmd_monitor(args) -> int:
    from noshow.store import monitor
    from noshow.store.database import open_store
    from noshow.store.monitor_report import write_monitor

    result = monitor.monitor(open_store(args.db))
    written = write_monitor(result, args.out)
    for warning in result["warnings"]:
        print(f"noshow: warning: {warning}", file=sys.stderr)
    s, randomised = result["summary"], result["effect"]["randomised"]
    effect = (f"; call effect E = {randomised['E']:.3f} (95% CI {randomised['E_ci'][0]:.3f} to {randomised['E_ci'][1]:.3f}, "
              f"randomised)" if randomised else "; no randomised estimate of the call's effect")
    print(f"monitored {s['days']} day(s), {s['appointments']:,} appointments ({s['with_outcome']:,} with outcomes){effect}; "
          f"wrote {', '.join(map(str, written))}")
    return 0


def add_parser(commands) -> None:
    monitor = commands.add_parser("monitor", parents=[common.store_flags(required=True)],
                                  help="realised performance of the recorded lists and the call's effect")
    monitor.add_argument("--out", default="noshow-monitor", metavar="DIR", help="folder for monitor.html and monitor.json")
    monitor.set_defaults(run=cmd_monitor)
