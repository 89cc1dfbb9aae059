"""Exports that take raw text: SavedModel (TF Serving), TFLite (mobile), ONNX.

`export(model, format=...)` writes one format into TF Serving's layout,
`savedmodels/<model-name>/<version>/` for SavedModels and
`savedmodels/<model-name>-<format>/<version>/` for the others (the next version; never
overwritten), atomically (a temporary sibling renamed when complete), with a model card
(`card.json`, `README.md`). SavedModel and TFLite take raw strings and decode in the
graph (the head's `serving_outputs`); ONNX takes token ids and ships the tokenizer's
files and a Python client (`kerabert.export.client`). `mediapipe` is a TFLite on token
ids with MediaPipe's metadata (vocabulary, labels) for its `TextClassifier`;
`huggingface` is a folder `transformers` loads (`kerabert.huggingface`). See
`docs/export.md`.
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path
from typing import Any

from kerabert.export import layout, serving_config
from kerabert.export.card import build_card, write_card
from kerabert.export.layout import DEFAULT_ROOT, DestinationExistsError
from kerabert.export.serving import ExportError, check_exportable

FORMATS = ("savedmodel", "tflite", "onnx", "mediapipe", "huggingface")
QUANTIZATIONS = (None, "int8", "int8-full")

__all__ = ["DestinationExistsError", "ExportError", "FORMATS", "export"]


def _writer(format):
    if format == "savedmodel":
        from kerabert.export import savedmodel as module
    elif format == "tflite":
        from kerabert.export import tflite as module
    elif format == "mediapipe":
        from kerabert.export import mediapipe as module
    elif format == "huggingface":
        from kerabert.export import huggingface as module
    else:
        from kerabert.export import onnx as module
    return module.write


def _load(model):
    """`(task, source, metrics)` from a Task, a `.keras` file, a training folder or a
    fine-tuned Hugging Face folder."""
    if not isinstance(model, (str, Path)):
        return model, None, None
    from kerabert.huggingface import is_folder
    from kerabert.task import load_model

    path = Path(model)
    if is_folder(path) and not (path / "model.keras").exists():
        return load_model(path, compile=False), path, None
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model (train one with `kerabert train`)")
    metrics = None
    if (path.parent / "metrics.json").is_file():
        with open(path.parent / "metrics.json", encoding="utf-8") as f:
            metrics = json.load(f)
    return load_model(path, compile=False), path, metrics


def default_name(model, source=None):
    """The model's name in the layout: its training folder's name, else the Keras name."""
    if source is not None:
        source = Path(source)
        return source.parent.name if source.stem == "model" and source.parent.name else source.stem
    return model.name


def check_tokenizer_format(model, format, options):
    """Refuse, before any folder is made, a format that cannot carry the model's
    tokenizer: only WordPiece has TFLite kernels, an ONNX client and MediaPipe metadata."""
    from kerabert.tokenizer import BertTokenizer

    if isinstance(model.tokenizer, BertTokenizer):
        return
    kind = type(model.tokenizer).__name__
    backbone = getattr(model.backbone, "family", type(model.backbone).__name__)
    if format == "tflite" and options.get("text_signature", True):
        raise ExportError(
            f"format tflite cannot carry this model's {kind} ({backbone}): tensorflow-text "
            "has no TFLite kernel for it. Export the token-ids model instead "
            "(--token-ids-only / text_signature=False) and tokenize in the app, or use "
            "--format savedmodel, whose raw-text signature carries the tokenizer")
    if format in ("onnx", "mediapipe"):
        raise ExportError(
            f"format {format} carries WordPiece tokenizers only, not this model's {kind} "
            f"({backbone}); use --format savedmodel (raw text in) or --format tflite "
            "--token-ids-only (token ids in)")


def export(model: Any, format: str = "savedmodel", destination: str | os.PathLike | None = None,
           quantize: str | None = None, name: str | None = None, *,
           root: str | os.PathLike = DEFAULT_ROOT, metrics: dict | None = None,
           **options: Any) -> Path:
    """Export a task model for deployment.

    Args:
        model: a kerabert `Task`, a `.keras` file, or a `kerabert train` output folder
            (its `metrics.json` goes into the model card).
        format: `"savedmodel"` (TF Serving; raw strings in), `"tflite"` (tokenizer
            inside; raw strings in), `"onnx"` (token ids in; tokenizer files beside) or
            `"mediapipe"` (TFLite for MediaPipe's TextClassifier; classifiers only) or
            `"huggingface"` (a folder transformers loads, head and labels included).
        destination: an exact directory to write (must not exist). By default,
            `<root>/<name>/<next version>/` (SavedModel) or
            `<root>/<name>-<format>/<next version>/` (other formats).
        quantize: `None` or `"int8"` (TFLite and MediaPipe dynamic-range; ONNX dynamic
            int8 weights); `"int8-full"` (MediaPipe: int8 activations too, calibrated on
            `calibration_data`, a training file or columns); ONNX: onnxruntime static
            quantization calibrated the same way.
        name: the model's name in the layout (default: the training folder's name or
            the Keras model name).
        root: the layout's root directory.
        metrics: a training report for the card (default: `metrics.json` beside the
            model file).
        **options: format options: `text_signature=False` (SavedModel and TFLite:
            token-ids `serving_default` only, loadable without tensorflow-text; the
            TFLite form of a SentencePiece model), `opset=17` (ONNX).
            SavedModel: `warmup=False` (no `assets.extra/tf_serving_warmup_requests`),
            `warmup_data` (a file the head reads, or columns: the warmup texts; default
            the card's examples) with `warmup_read_options`, `serving_config` (write
            `models.config` and `batching_parameters.txt` beside the model folders;
            default: when exporting into the layout, not with `destination`).
            ONNX: `onnx_tokenizer=True` also writes `model_text.onnx`, tokenizer in the
            graph (onnxruntime-extensions; single-label classifiers); `onnx_fusion=False`
            keeps tf2onnx's graph as written (no `kerabert.export.onnx_fusion` rewrite).

    Returns:
        The `Path` of the written directory.

    Example:
    ```python
    path = kerabert.export("runs/sst2", format="tflite", quantize="int8")
    # savedmodels/sst2-tflite/1/model.tflite, card.json, README.md
    ```
    """
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantize!r}; choose int8, int8-full or none")
    if quantize == "int8-full" and format not in ("mediapipe", "onnx"):
        raise ExportError("int8-full (calibrated) quantization is available for mediapipe "
                          "and onnx")
    if quantize and format == "huggingface":
        raise ExportError("the huggingface format holds float32 weights (no quantization)")
    if quantize and format == "savedmodel":
        raise ExportError("int8 quantization is available for tflite, mediapipe and onnx, "
                          "not savedmodel")
    unknown = set(options) - {"text_signature", "opset", "warmup", "warmup_data",
                              "warmup_read_options", "serving_config", "onnx_tokenizer",
                              "onnx_fusion", "calibration_data", "calibration_read_options"}
    if unknown:
        raise ExportError(f"unknown export option(s) {sorted(unknown)}")
    write_config = options.pop("serving_config", None)
    calibration_data = options.pop("calibration_data", None)
    calibration_read_options = options.pop("calibration_read_options", None)
    if calibration_data is not None and quantize != "int8-full":
        raise ExportError("calibration data is for quantize='int8-full'")
    onnx_tokenizer = options.pop("onnx_tokenizer", False)
    if "onnx_fusion" in options and format != "onnx":
        raise ExportError("onnx_fusion applies to format onnx")
    if onnx_tokenizer and format != "onnx":
        raise ExportError("onnx_tokenizer applies to format onnx")
    warmup_data = options.pop("warmup_data", None)
    warmup_read_options = options.pop("warmup_read_options", None)
    if format != "savedmodel" and (write_config or warmup_data is not None
                                   or "warmup" in options):
        raise ExportError("warmup requests and the TF Serving configuration are for "
                          "format savedmodel")
    model, source, found_metrics = _load(model)
    check_exportable(model)
    check_tokenizer_format(model, format, options)
    if format == "huggingface":
        from kerabert.export import huggingface

        huggingface.check(model)
    if onnx_tokenizer:
        from kerabert.export import onnx_text

        onnx_text.check_classifier(model)
    metrics = metrics if metrics is not None else found_metrics
    if destination is not None:
        target = layout.atomic_directory(destination)
        name = Path(destination).parent.name
        serving_root = Path(destination).parent.parent
    else:
        name = layout.check_name(name or default_name(model, source))
        target = layout.atomic_directory(model_dir=layout.model_dir(root, name, format))
        serving_root = Path(root)
    if quantize == "int8-full":
        if calibration_data is None:
            raise ExportError("int8-full quantization needs calibration texts "
                              "(calibration_data= / --calibration-data: e.g. the training file)")
        from kerabert.export import mediapipe

        options["calibration"] = mediapipe.calibration_texts(
            model, calibration_data, read_options=calibration_read_options)
    if format == "savedmodel":
        from kerabert.export import warmup

        options["model_name"] = name
        if warmup_data is not None:
            options["warmup_texts"] = warmup.texts_from(model, warmup_data, warmup_read_options)
    with target as written:
        static = format == "onnx" and quantize == "int8-full"
        facts = _writer(format)(model, written.temporary,
                                quantize=None if static else quantize, **options)
        if static:  # calibrated int8 from the float graph just written
            from kerabert.export import onnx_static

            facts["quantization"] = onnx_static.quantize(
                model, written.temporary / "model.onnx", options["calibration"])
        if onnx_tokenizer:  # the text-in graph beside the token-ids one
            extra = onnx_text.write(model, written.temporary)
            facts["signatures"].update(extra["signatures"])
            facts["requires"] = facts.get("requires", []) + extra["requires"]
        if format == "savedmodel":
            facts["tf_serving"] = warmup.card_facts(
                model, serving_root, name, options.get("text_signature", True))
        write_card(written.temporary, build_card(
            model, format=format, quantize=quantize, facts=facts, source=source,
            metrics=metrics,
        ))
    # Beside the model folders, after the version is in place, so the list includes it.
    if format == "savedmodel" and (write_config or (write_config is None
                                                    and destination is None)):
        serving_config.write(serving_root)
    return written.final


class _CallableModule(types.ModuleType):
    """`kerabert.export` is this package and, called, its `export` function: with the
    lazy `kerabert` namespace the package can be imported first, and its module object
    then stands where `kerabert.export` (the function) used to be."""

    def __call__(self, *args, **kwargs):
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
