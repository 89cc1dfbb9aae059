"""Files of a Hugging Face checkpoint folder that every model family reads alike.

`read_json` (errors name the file and line), the WordPiece vocabulary (`vocab.txt`, or
the one inside `tokenizer.json`, all transformers 5 writes), the tokenizer's casing, and
Hugging Face's `hidden_act` names as Keras activations.
"""

from __future__ import annotations

import json

import keras

from kerabert.validation import CheckpointError

# Hugging Face `hidden_act` -> Keras activation. Hugging Face's "gelu" is the exact
# erf GELU; keras-hub's BertBackbone always uses the tanh approximation, which moves
# all-MiniLM-L6-v2's sequence_output by up to 3.4e-3.
HF_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "gelu_fast": "gelu_approximate",
    "relu": "relu",
}


def activation(name):
    """A Keras activation from kerabert's name (`"gelu"` is exact, `"gelu_approximate"`
    the tanh form)."""
    if name == "gelu":
        return lambda x: keras.activations.gelu(x, approximate=False)
    if name == "gelu_approximate":
        return lambda x: keras.activations.gelu(x, approximate=True)
    return keras.activations.get(name)


def read_json(path):
    """A JSON file; a syntax error names the file and line."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: line {e.lineno}: invalid JSON ({e.msg})") from None


def read_vocabulary(path):
    """A one-token-per-line vocabulary file (trailing blank lines dropped)."""
    if not path.exists():
        raise CheckpointError(f"{path.parent}: missing {path.name} (the WordPiece vocabulary)")
    with open(path, encoding="utf-8") as f:
        vocabulary = [line.rstrip("\r\n") for line in f]
    while vocabulary and vocabulary[-1] == "":
        vocabulary.pop()
    return vocabulary


def hf_vocabulary(path):
    """The WordPiece vocabulary of a Hugging Face folder: `vocab.txt`, else the one inside
    `tokenizer.json` (transformers 5 writes only the latter)."""
    if (path / "vocab.txt").exists() or not (path / "tokenizer.json").exists():
        return read_vocabulary(path / "vocab.txt")
    tokenizer_json = path / "tokenizer.json"
    model = read_json(tokenizer_json).get("model") or {}
    if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise CheckpointError(
            f"{tokenizer_json}: model type {model.get('type')!r} is not a WordPiece "
            "vocabulary, and there is no vocab.txt")
    by_id = sorted(model["vocab"].items(), key=lambda item: item[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise CheckpointError(f"{tokenizer_json}: the WordPiece ids are not 0..{len(by_id) - 1}")
    return [token for token, _ in by_id]


def hf_lowercase(path):
    """Lower-casing as the checkpoint's own tokenizer does it."""
    tokenizer_json = path / "tokenizer.json"
    if tokenizer_json.exists():
        normalizer = (read_json(tokenizer_json).get("normalizer") or {})
        if normalizer.get("type") == "BertNormalizer" and "lowercase" in normalizer:
            strip = normalizer.get("strip_accents")
            if strip is not None and strip != normalizer["lowercase"]:
                raise CheckpointError(
                    f"{tokenizer_json}: lowercase={normalizer['lowercase']} with "
                    f"strip_accents={strip} is not supported by the in-graph tokenizer"
                )
            return bool(normalizer["lowercase"])
    tokenizer_config = path / "tokenizer_config.json"
    if tokenizer_config.exists():
        return bool(read_json(tokenizer_config).get("do_lower_case", True))
    return True


def check_weights_file(path):
    """Refuse a folder without safetensors weights (pickles are never loaded)."""
    has_safetensors = (path / "model.safetensors").exists() or (
        path / "model.safetensors.index.json"
    ).exists()
    if not has_safetensors:
        pickles = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        detail = (
            f"only pickle weights ({', '.join(sorted(pickles))}), which kerabert never loads; "
            "convert them to model.safetensors first"
            if pickles
            else "no model.safetensors"
        )
        raise CheckpointError(f"{path}: {detail}")
