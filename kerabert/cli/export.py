"""`kerabert export`: write a model for deployment (SavedModel, TFLite, ONNX)."""

from __future__ import annotations

import argparse
from typing import Any

from kerabert.cli.common import UserError, add_command, print_json, resolve_model_path


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "export",
        help="export for deployment: savedmodel (TF Serving), tflite, onnx, mediapipe, "
             "huggingface (transformers)",
        description="Export a trained model. SavedModel and TFLite take raw text and "
                    "decode in the graph; ONNX takes token ids and ships its tokenizer "
                    "files. Written to ROOT/NAME/VERSION (the next version, never "
                    "overwritten) unless --output is given.",
    )
    parser.add_argument("model", help="a model.keras file, a `kerabert train` output folder "
                                      "or a fine-tuned Hugging Face BERT folder")
    parser.add_argument("--format", required=True,
                        choices=("savedmodel", "tflite", "onnx", "mediapipe", "huggingface"),
                        help="savedmodel and tflite take raw text; onnx takes token ids; "
                             "mediapipe: MediaPipe's TextClassifier (classifiers); "
                             "huggingface: a folder transformers' AutoModelFor... loads")
    parser.add_argument("--quantize", choices=("int8", "int8-full"),
                        help="int8: dynamic-range int8 weights (tflite, mediapipe, onnx); "
                             "int8-full: int8 activations too, calibrated on "
                             "--calibration-data (mediapipe, onnx)")
    parser.add_argument("--calibration-data", metavar="FILE",
                        help="int8-full: training data whose texts calibrate the "
                             "activation ranges (200 drawn at random)")
    parser.add_argument("--output", metavar="DIR",
                        help="write exactly this directory (must not exist)")
    parser.add_argument("--root", default="savedmodels",
                        help="root of the versioned layout")
    parser.add_argument("--name", help="model name in the layout (default: the model folder's)")
    parser.add_argument("--token-ids-only", action="store_true",
                        help="savedmodel, tflite: serving_default on token ids, no "
                             "tensorflow-text ops (for servers built without them, and "
                             "for tokenizers with no TFLite kernel)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset")
    parser.add_argument("--onnx-tokenizer", action="store_true",
                        help="onnx: also write model_text.onnx with the tokenizer in the "
                             "graph (raw text in; onnxruntime-extensions; classifiers)")
    parser.add_argument("--no-onnx-fusion", action="store_true",
                        help="onnx: keep tf2onnx's graph as written (no layer-norm, GELU "
                             "and projection rewrite for onnxruntime)")
    parser.add_argument("--warmup-data", metavar="FILE",
                        help="savedmodel: build the TF Serving warmup requests from this "
                             "file's texts (e.g. the validation data; default: the card's "
                             "example texts)")
    parser.add_argument("--no-warmup", action="store_true",
                        help="savedmodel: no assets.extra/tf_serving_warmup_requests")
    parser.add_argument("--serving-config", action="store_true",
                        help="savedmodel: write models.config and batching_parameters.txt "
                             "beside the model folders also with --output (always done "
                             "in the ROOT layout)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kerabert.export import DestinationExistsError, ExportError, export

    options: dict[str, Any] = {}
    if args.token_ids_only:
        if args.format not in ("savedmodel", "tflite"):
            raise UserError("--token-ids-only applies to --format savedmodel and tflite")
        options["text_signature"] = False
    if args.format == "onnx":
        options["opset"] = args.opset
    if args.onnx_tokenizer:
        options["onnx_tokenizer"] = True
    if args.no_onnx_fusion:
        if args.format != "onnx":
            raise UserError("--no-onnx-fusion applies to --format onnx")
        options["onnx_fusion"] = False
    if args.calibration_data:
        options["calibration_data"] = args.calibration_data
    if args.warmup_data:
        options["warmup_data"] = args.warmup_data
    if args.no_warmup:
        options["warmup"] = False
    if args.serving_config:
        options["serving_config"] = True
    try:
        path = export(
            str(resolve_model_path(args.model)), format=args.format, destination=args.output,
            quantize=args.quantize, name=args.name, root=args.root, **options,
        )
    except (ExportError, DestinationExistsError, ValueError) as e:
        raise UserError(str(e)) from None
    print_json({"format": args.format, "quantize": args.quantize, "path": str(path)})
    return 0
