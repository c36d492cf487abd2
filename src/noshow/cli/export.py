"""``noshow export``: a model file as one ONNX graph."""

from __future__ import annotations


def cmd_export(args) -> int:
    from noshow.model import TrainedModel
    from noshow.onnx_export import export_onnx

    model = TrainedModel.load(args.model)
    written = export_onnx(model, args.onnx)
    if not args.quiet:
        print(f"wrote {written}: {model.config.members} network(s), their mean and the {model.calibrator.method} "
              f"calibration map, from {model.n_inputs} scaled features to P(no-show)")
    return 0


def add_parser(commands) -> None:
    export = commands.add_parser("export", help="write a model file as one ONNX graph (noshow[onnx])")
    export.add_argument("--model", required=True, metavar="MODEL.npz")
    export.add_argument("--onnx", required=True, metavar="MODEL.onnx")
    export.add_argument("--quiet", action="store_true")
    export.set_defaults(run=cmd_export)
