"""The model card written beside every export: `card.json` and a readable `README.md`."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

CARD_FILE = "card.json"
README_FILE = "README.md"


def backbone_summary(model):
    """The backbone's architecture, from its Keras config."""
    config = model.backbone.get_config()
    keys = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim",
            "max_sequence_length", "hidden_activation")
    summary = {key: config[key] for key in keys if key in config}
    summary["class"] = type(model.backbone).__name__
    summary["parameters"] = int(model.backbone.count_params())
    return summary


def build_card(model, *, format, quantize, facts, source=None, metrics=None):
    """The card as a dict.

    Args:
        model: the exported `Task`.
        format: `savedmodel`, `tflite` or `onnx`.
        quantize: `None` or `int8`.
        facts: what the format writer reports (`signatures`, `requires`, ...).
        source: the model file exported from.
        metrics: the training report (`metrics.json` of `kerabert train`), if any.
    """
    from kerabert import __version__

    head = model.head
    return {
        "format": format,
        "quantize": quantize,
        "head": {"name": head.name, "class": f"{type(head).__module__}.{type(head).__name__}",
                 "config": head.get_config()},
        # The names predictions give (label values renamed by `label_names`).
        "labels": getattr(head, "output_labels", None) or getattr(head, "labels", None),
        "fields": list(head.fields),
        "backbone": backbone_summary(model),
        "tokenizer": {"vocabulary_size": model.tokenizer.vocabulary_size,
                      "lowercase": bool(model.tokenizer.lowercase)},
        "max_sequence_length": int(model.sequence_length),
        **facts,
        "training": metrics,
        "source": None if source is None else str(source),
        "kerabert_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _files(directory):
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = Path(root) / name
            files[str(path.relative_to(directory))] = path.stat().st_size
    return dict(sorted(files.items()))


def write_card(directory, card):
    """Write `card.json` and `README.md` into `directory` (file sizes are added)."""
    directory = Path(directory)
    card = dict(card, files=_files(directory))
    with open(directory / CARD_FILE, "w", encoding="utf-8") as f:
        json.dump(card, f, indent=2, default=str)
    with open(directory / README_FILE, "w", encoding="utf-8") as f:
        f.write(render(card))
    return card


def _signature_table(signatures):
    lines = []
    for name, (inputs, outputs) in signatures.items():
        lines.append(f"\n### `{name}`\n\n| | name | dtype | shape |\n|---|---|---|---|")
        for side, values in (("input", inputs), ("output", outputs)):
            for key, (dtype, shape) in values.items():
                shape = "?" if shape is None else "[" + ", ".join(
                    "batch" if i == 0 and d in (None, -1) else ("?" if d in (None, -1) else str(d))
                    for i, d in enumerate(shape)) + "]" if isinstance(shape, list) else shape
                lines.append(f"| {side} | `{key}` | {dtype} | {shape} |")
    return "\n".join(lines)


def _serving_section(serving, warmup):
    """How to serve the SavedModel: server versions, `docker run`, REST bodies."""
    lines = ["\n## Serving with TF Serving\n"]
    if serving.get("tensorflow_text"):
        lines.append(
            f"The server must run TensorFlow {serving['tensorflow']} or newer **with "
            f"tensorflow-text {serving['tensorflow_text']}'s ops linked in** "
            "(`FastBertNormalize`, `FastWordpieceTokenizeWithOffsets`, ...). The stock "
            "`tensorflow/serving` image does not have them and refuses to load this "
            "model (`Op type not registered`); use a TF Serving build that links "
            "tensorflow-text at that version, or export with `--token-ids-only`.")
    else:
        lines.append(f"The server must run TensorFlow {serving['tensorflow']} or newer; "
                     "this model holds no tensorflow-text op, so the stock image serves it.")
    lines.append(f"\n```bash\n{serving['docker']}\n```\n")
    if warmup:
        lines.append(f"Warmup: `{warmup['file']}`, {warmup['records']} requests of batch "
                     f"sizes {warmup['batch_sizes']} built from the {warmup['texts']}.\n")
    elif warmup is None:
        lines.append("No warmup requests: `tensorflow-serving-api` was not installed at "
                     "export (`pip install tensorflow-serving-api`, then export again).\n")
    for form in ("instances", "inputs"):
        lines.append(f"REST, `{form}` form:\n\n```bash\ncurl -d '"
                     + json.dumps(serving[form], ensure_ascii=False).replace("'", "'\\''")
                     + f"' {serving['url']}\n```\n")
    return "\n".join(lines)


def render(card):
    """The card as Markdown."""
    backbone = card["backbone"]
    lines = [
        f"# {card['head']['name']} model ({card['format']}"
        + (f", {card['quantize']}" if card.get("quantize") else "") + ")",
        "",
        f"- Head: `{card['head']['name']}` ({card['head']['class']})",
        f"- Labels: {card['labels']}" if card.get("labels") is not None else "- Labels: none",
        f"- Raw input fields: {', '.join(card['fields'])}",
        f"- Backbone: {backbone['class']}, {backbone.get('num_layers')} layers, hidden "
        f"{backbone.get('hidden_dim')}, {backbone.get('parameters'):,} parameters, "
        f"vocabulary {card['tokenizer']['vocabulary_size']:,} "
        f"({'uncased' if card['tokenizer']['lowercase'] else 'cased'})",
        f"- Max sequence length: {card['max_sequence_length']} tokens (longer inputs are truncated)",
    ]
    if card.get("quantization"):
        lines.append(f"- Quantization: {card['quantization']}")
    for requirement in card.get("requires", []):
        lines.append(f"- Requires: {requirement}")
    lines.append("\n## Inputs and outputs")
    lines.append(_signature_table(card.get("signatures", {})))
    if card.get("tf_serving"):
        lines.append(_serving_section(card["tf_serving"], card.get("warmup", False)))
    lines.append("\n## Training and evaluation\n")
    training = card.get("training")
    if training:
        keys = ("train_examples", "epochs", "batch_size", "sequence_length", "train_seconds")
        lines.append(", ".join(f"{k}: {training[k]}" for k in keys if k in training))
        if training.get("validation"):
            lines.append(f"\nValidation: {json.dumps(training['validation'])}")
    else:
        lines.append("No training report (`metrics.json`) was found beside the model.")
    lines.append("\n## Files\n")
    for name, size in card.get("files", {}).items():
        lines.append(f"- `{name}`: {size:,} bytes")
    lines.append(f"\nExported by kerabert {card['kerabert_version']} on {card['created']}"
                 + (f" from `{card['source']}`" if card.get("source") else "") + ".\n")
    return "\n".join(lines)
