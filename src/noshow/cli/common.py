"""What the commands share: the one-line parser, flag types, the parent parsers of the shared flags
(data, network, scoring, store), and reading the data a command is given."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from noshow.errors import NoshowError

STREAM_BYTES = 1 << 30  # train streams from disk by itself for files larger than this


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other user error."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        raise NoshowError(message)


def _integer(text: str, least: int, below: str) -> int:
    """``text`` as an integer of at least ``least``; ``below`` says what a smaller one is."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} {below}")
    return value


def positive_int(text: str) -> int:
    return _integer(text, 1, "is not a positive integer")


def non_negative_int(text: str) -> int:
    return _integer(text, 0, "is negative (seeds are 0 or more)")


def hidden_widths(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of widths") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: widths must be positive")
    return sizes


def row_counts(text: str) -> list[int]:
    try:
        counts = [int(float(part)) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of row counts") from None
    if min(counts) < 1000:
        raise argparse.ArgumentTypeError("row counts must be at least 1000")
    return counts


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def schema_of(args, model=None):
    """The schema files are read through: --schema, else the model's own; a --schema other than
    the one the model was trained through is refused (its features would not be the model's)."""
    from noshow.data.schema_file import read_schema

    given = read_schema(args.schema) if getattr(args, "schema", None) else None
    if model is None:
        return given
    recorded = model.schema
    if given is not None and (recorded is None or given.to_dict() != recorded.to_dict()):
        trained = "the Kaggle layout" if recorded is None else f"the schema {recorded.name!r} it records"
        raise NoshowError(f"{args.schema}: the model was trained through {trained}; files it scores are read "
                          f"the same way (drop --schema)")
    return recorded


def load(args, path, schema, *, require_label: bool):
    """Load one data file given on the command line, through ``schema``."""
    from noshow.data import loader

    return loader.load(path, require_label=require_label, encoding=args.encoding, separator=args.sep, schema=schema)


def resolve_data(args, *, require_label: bool = True, schema=None):
    """Load --data, else $NOSHOW_DATA, else synthetic data (saying so on stderr); through
    ``schema``, else --schema."""
    from noshow.data import loader, synth

    schema = schema if schema is not None else schema_of(args)
    path = args.data or os.environ.get(loader.DATA_ENV)
    if path:
        return load(args, path, schema, require_label=require_label)
    if schema is not None:
        raise NoshowError(f"--schema {args.schema}: give the export it describes with --data FILE")
    loaded = synth.synthetic_appointments()
    # Said even with --quiet: results on made-up data must never pass for real ones.
    print(f"noshow: no --data given and ${loader.DATA_ENV} unset: using {loaded.source}", file=sys.stderr)
    return loaded


def config_of(args):
    from noshow.nn.config import MLPConfig

    pos_weight = args.pos_weight
    if pos_weight != "balanced":
        try:
            pos_weight = float(pos_weight)
        except ValueError:
            raise NoshowError(f"--pos-weight: {pos_weight!r} is neither a number nor 'balanced'") from None
    try:
        return MLPConfig(**{**{f.name: getattr(args, f.name) for f in dataclasses.fields(MLPConfig)},
                            "pos_weight": pos_weight})
    except ValueError as exc:
        raise NoshowError(str(exc)) from None


def check_device(args) -> None:
    if args.device != "cpu" and getattr(args, "backend", "torch") == "numpy":
        raise NoshowError(f"--device {args.device}: the numpy backend runs on the CPU only")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise NoshowError(f"--device {args.device}: CUDA is not available on this machine")


def current_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def write_card(model, out) -> str:
    from noshow.clinic.card import card_path, write_card

    return str(write_card(model, card_path(out)))


def is_large(path: str | None) -> bool:
    return bool(path) and os.path.isfile(path) and os.path.getsize(path) > STREAM_BYTES



# Parent parsers: each group of flags that several commands share is declared once, here, and a
# command takes it with ``commands.add_parser(name, parents=[...])``.


def data_flags() -> argparse.ArgumentParser:
    """--data, --encoding, --sep, --schema: the file a command reads, and how."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--data",
        metavar="FILE",
        help="appointments CSV (plain or .gz); default: $NOSHOW_DATA, else synthetic data",
    )
    parent.add_argument("--encoding", default=None, metavar="NAME",
                        help="text encoding of the CSV files (default: detected: UTF-8, else Windows-1252)")
    parent.add_argument("--sep", default=None, metavar="CHAR",
                        help="field separator of the CSV files: ',' ';' or tab (default: detected from the header)")
    parent.add_argument("--schema", default=None, metavar="FILE",
                        help="schema file (TOML) naming the export's columns, outcome values, date formats and "
                             "covariates (noshow schema proposes one); default: the Kaggle layout, or the model's")
    return parent


def network_flags() -> argparse.ArgumentParser:
    """Hyperparameter flags; defaults come from MLPConfig so they are defined once."""
    from noshow.data.splits import SPLITS
    from noshow.nn import config as C

    parent = argparse.ArgumentParser(add_help=False)
    net = parent.add_argument_group("network and training")
    # Every MLPConfig field is a flag, named after it, with its default: a new field needs no edit here.
    for spec in dataclasses.fields(C.MLPConfig):
        default = getattr(C.MLPConfig(), spec.name)
        options = {"default": default, "help": C.HELP.get(spec.name)}
        if spec.name in C.CHOICES:
            options["choices"] = C.CHOICES[spec.name]
        elif isinstance(default, tuple):
            options["type"] = hidden_widths
        elif spec.name == "seed":
            options["type"] = non_negative_int
        elif isinstance(default, (int, float)) and spec.name != "pos_weight":
            options["type"] = type(default)
        net.add_argument("--" + spec.name.replace("_", "-"), **options)
    parent.add_argument("--split", choices=SPLITS, default="random")
    parent.add_argument("--split-seed", type=non_negative_int, default=0)
    return parent


def scoring_flags() -> argparse.ArgumentParser:
    """What scoring needs, for predict and serve: the model, the history, who computes."""
    from noshow.nn.twins import BACKENDS

    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--model", required=True, metavar="MODEL.npz")
    parent.add_argument("--history", metavar="FILE", help="the patients' other appointments for their history: "
                        "earlier ones with outcomes, later ones already booked")
    parent.add_argument("--backend", choices=BACKENDS, default="numpy")
    parent.add_argument("--device", default="cpu")
    return parent


def store_flags(required: bool = False) -> argparse.ArgumentParser:
    """--db: the clinic's store (required by the commands that only work on one)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--db", required=required, metavar="DB",
                        help="the clinic's store: an SQLite file (created if new, e.g. noshow.db) or a postgresql:// URL")
    return parent
