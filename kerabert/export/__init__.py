"""Exports that take raw text: SavedModel (TF Serving), TFLite (mobile), ONNX.

`export(model, format=...)` writes one format into TF Serving's layout,
`savedmodels/<model-name>/<version>/` for SavedModels and
`savedmodels/<model-name>-<format>/<version>/` for the others (the next version; never
overwritten), atomically
(a temporary sibling renamed when complete), with a model card (`card.json`,
`README.md`). SavedModel and TFLite take raw strings and decode in the graph (the head's
`serving_outputs`); ONNX takes token ids and ships the tokenizer's files and a Python
client (`kerabert.export.client`). See `docs/export.md`.
"""

from __future__ import annotations

import json
from pathlib import Path

from kerabert.export import layout
from kerabert.export.card import build_card, write_card
from kerabert.export.layout import DEFAULT_ROOT, DestinationExistsError
from kerabert.export.serving import ExportError, check_exportable

FORMATS = ("savedmodel", "tflite", "onnx")
QUANTIZATIONS = (None, "int8")

__all__ = ["DestinationExistsError", "ExportError", "FORMATS", "export"]


def _writer(format):
    if format == "savedmodel":
        from kerabert.export import savedmodel as module
    elif format == "tflite":
        from kerabert.export import tflite as module
    else:
        from kerabert.export import onnx as module
    return module.write


def _load(model):
    """`(task, source, metrics)` from a Task, a `.keras` file or a training folder."""
    if not isinstance(model, (str, Path)):
        return model, None, None
    from kerabert.task import load_model

    path = Path(model)
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


def export(model, format="savedmodel", destination=None, quantize=None, name=None, *,
           root=DEFAULT_ROOT, metrics=None, **options):
    """Export a task model for deployment.

    Args:
        model: a kerabert `Task`, a `.keras` file, or a `kerabert train` output folder
            (its `metrics.json` goes into the model card).
        format: `"savedmodel"` (TF Serving; raw strings in), `"tflite"` (tokenizer
            inside; raw strings in) or `"onnx"` (token ids in; tokenizer files beside).
        destination: an exact directory to write (must not exist). By default,
            `<root>/<name>/<next version>/` (SavedModel) or
            `<root>/<name>-<format>/<next version>/` (other formats).
        quantize: `None` or `"int8"` (TFLite dynamic-range; ONNX dynamic int8 weights).
        name: the model's name in the layout (default: the training folder's name or
            the Keras model name).
        root: the layout's root directory.
        metrics: a training report for the card (default: `metrics.json` beside the
            model file).
        **options: format options: `text_signature=False` (SavedModel: token-ids
            `serving_default` only, loadable without tensorflow-text), `opset=17` (ONNX).

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
        raise ExportError(f"unknown quantization {quantize!r}; choose int8 or none")
    if quantize and format == "savedmodel":
        raise ExportError("int8 quantization is available for tflite and onnx, not savedmodel")
    unknown = set(options) - {"text_signature", "opset"}
    if unknown:
        raise ExportError(f"unknown export option(s) {sorted(unknown)}")
    model, source, found_metrics = _load(model)
    check_exportable(model)
    metrics = metrics if metrics is not None else found_metrics
    if destination is not None:
        target = layout.atomic_directory(destination)
    else:
        target = layout.atomic_directory(
            model_dir=layout.model_dir(root, name or default_name(model, source), format))
    with target as written:
        facts = _writer(format)(model, written.temporary, quantize=quantize, **options)
        write_card(written.temporary, build_card(
            model, format=format, quantize=quantize, facts=facts, source=source,
            metrics=metrics,
        ))
    return written.final
