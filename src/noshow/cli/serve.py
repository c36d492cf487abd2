"""``noshow serve``: the scoring API and the staff page."""

from __future__ import annotations

import os

from noshow.cli import common
from noshow.cli.common import check_device, non_negative_int, positive_float, positive_int, schema_of
from noshow.errors import NoshowError


def cmd_serve(args) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise NoshowError("serve needs FastAPI and uvicorn, an optional extra: pip install 'noshow[serve]'") from None
    from noshow.serve.run import TOKEN_ENV, serve
    from noshow.serve.service import Settings

    check_device(args)
    if args.schema:  # the service reads requests through the model's schema; a --schema must be it
        from noshow.model import TrainedModel

        schema_of(args, TrainedModel.load(args.model))
    from noshow.store.holdout import check_share

    check_share(args.holdout_share, args.holdout_seed)
    if args.holdout_share is not None and not args.db:
        raise NoshowError("--holdout-share: needs --db (the holdout is recorded in the store)")
    settings = Settings(args.model, args.history, args.backend, args.device, args.token or os.environ.get(TOKEN_ENV) or None,
                        args.max_body_mb, db=args.db, holdout_share=args.holdout_share, holdout_seed=args.holdout_seed)
    serve(settings, args.host, args.port, args.workers, access_log=not args.no_access_log)
    return 0


def add_parser(commands) -> None:
    serve = commands.add_parser("serve", parents=[common.scoring_flags(), common.store_flags()],
                                help="serve a model over HTTP: scoring API and a call-list page for staff")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only; any other needs a token)")
    serve.add_argument("--port", type=positive_int, default=8000)
    serve.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' (default: $NOSHOW_TOKEN)")
    serve.add_argument("--workers", type=positive_int, default=1, help="uvicorn worker processes, each with the model")
    serve.add_argument("--max-body-mb", type=positive_float, default=10.0, metavar="MB",
                       help="largest request body accepted (default 10 MB); larger ones get 413")
    serve.add_argument("--no-access-log", action="store_true", help="do not log requests (paths and status only anyway)")
    serve.add_argument("--schema", default=None, metavar="FILE",
                       help="the schema file the model was trained through (checked; requests are read through "
                            "the schema the model records)")
    serve.add_argument("--holdout-share", type=float, default=None, metavar="S",
                       help="with --db: set aside this share of each day's flagged appointments at random, not to be called")
    serve.add_argument("--holdout-seed", type=non_negative_int, default=None, metavar="N", help="the holdout's recorded seed")
    serve.set_defaults(run=cmd_serve)
