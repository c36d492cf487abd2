"""``noshow tune``: search hyperparameters on validation rows (Optuna) and write the best."""

from __future__ import annotations

from noshow.cli import common
from noshow.cli.common import config_of, positive_int, resolve_data
from noshow.errors import NoshowError


def cmd_tune(args) -> int:
    from noshow.allocator import keep_freed_memory
    from noshow.data.prepare import prepare
    from noshow.files import check_writable_parent, write_json
    from noshow.training import tune

    try:
        import optuna  # noqa: F401
    except ImportError:
        raise NoshowError("tune needs Optuna, an optional dependency: pip install 'noshow[tune]'") from None
    check_writable_parent(args.out)
    config = config_of(args)
    keep_freed_memory()
    loaded = resolve_data(args)
    prepared = prepare(loaded, args.split, args.split_seed, config.dtype)
    result = tune.tune(prepared, config, args.trials, args.seeds, args.timeout, progress=not args.quiet)
    write_json(args.out, result, indent=1)
    if not args.quiet:
        best, baseline = result["best"], result["baseline"]
        print(f"{len(result['trials'])} trials on {loaded.source} ({args.split} split, validation rows only): "
              f"best validation PR AUC {best['val_pr_auc']:.4f} (trial {best['number']}) against "
              f"{baseline['val_pr_auc']:.4f} for the current settings; wrote {args.out}\n"
              f"train with: noshow train {tune.flags(best['params'])}")
    return 0


def add_parser(commands) -> None:
    tune = commands.add_parser("tune", parents=[common.data_flags(), common.network_flags()],
                               help="search hyperparameters on validation data (Optuna); write the best")
    tune.add_argument("--trials", type=positive_int, default=30, help="settings to try (the first is the current one)")
    tune.add_argument("--seeds", type=positive_int, default=2, help="seeds per trial; the score is their mean")
    tune.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    tune.add_argument("--out", default="tune.json", metavar="FILE", help="results (default tune.json)")
    tune.add_argument("--quiet", action="store_true")
    tune.set_defaults(run=cmd_tune)
