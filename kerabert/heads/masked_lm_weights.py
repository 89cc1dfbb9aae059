"""Reading (and writing) BERT's pretraining heads from checkpoints.

Hugging Face `BertForPreTraining` / `BertForMaskedLM` safetensors hold
`cls.predictions.transform.dense.*`, `cls.predictions.transform.LayerNorm.*`,
`cls.predictions.bias` (the output projection is tied to the word embeddings) and
`cls.seq_relationship.*`; Google's TensorFlow checkpoints hold the same under
`cls/predictions/*` and `cls/seq_relationship/*`. Both are returned in one layout:
`{"mlm": {dense_kernel [in, out], dense_bias, norm_gamma, norm_beta, output_bias},
"nsp": {kernel [hidden, 2], bias}}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEAD_WEIGHTS_FILE = "masked_lm_head.safetensors"

# Hugging Face name -> (group, key, transpose from torch's [out, in]).
_HF_NAMES = {
    "cls.predictions.transform.dense.weight": ("mlm", "dense_kernel", True),
    "cls.predictions.transform.dense.bias": ("mlm", "dense_bias", False),
    "cls.predictions.transform.LayerNorm.weight": ("mlm", "norm_gamma", False),
    "cls.predictions.transform.LayerNorm.bias": ("mlm", "norm_beta", False),
    "cls.predictions.bias": ("mlm", "output_bias", False),
    "cls.seq_relationship.weight": ("nsp", "kernel", True),
    "cls.seq_relationship.bias": ("nsp", "bias", False),
}
_HF_ALIASES = {  # older checkpoints
    "cls.predictions.transform.LayerNorm.gamma": "cls.predictions.transform.LayerNorm.weight",
    "cls.predictions.transform.LayerNorm.beta": "cls.predictions.transform.LayerNorm.bias",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}
_GOOGLE_NAMES = {
    "cls/predictions/transform/dense/kernel": ("mlm", "dense_kernel", False),
    "cls/predictions/transform/dense/bias": ("mlm", "dense_bias", False),
    "cls/predictions/transform/LayerNorm/gamma": ("mlm", "norm_gamma", False),
    "cls/predictions/transform/LayerNorm/beta": ("mlm", "norm_beta", False),
    "cls/predictions/output_bias": ("mlm", "output_bias", False),
    "cls/seq_relationship/output_weights": ("nsp", "kernel", True),  # stored [2, hidden]
    "cls/seq_relationship/output_bias": ("nsp", "bias", False),
}


@dataclass
class HeadWeights:
    """Pretraining-head weights found in a checkpoint, and where."""

    source: str
    weights: dict


def read_head_weights(spec):
    """The MLM/NSP head weights of a `load_backbone` spec, or None when it has none.

    Only complete groups are returned: a checkpoint with part of an MLM head raises a
    `ValueError` naming the file and the missing names.
    """
    path = _local_path(spec)
    if path is None:
        return None
    if path.is_dir():
        for name in (HEAD_WEIGHTS_FILE, "model.safetensors"):
            if (path / name).exists():
                return _from_safetensors([path / name], path / name)
        index = path / "model.safetensors.index.json"
        if index.exists():
            with open(index, encoding="utf-8") as f:
                shards = sorted(set(json.load(f).get("weight_map", {}).values()))
            return _from_safetensors([path / s for s in shards], index)
        if (path / "bert_config.json").exists():
            from kerabert.backbone import _google_checkpoint_prefix

            return _from_google(_google_checkpoint_prefix(path))
        return HeadWeights(str(path), {})
    if Path(str(path) + ".index").exists():
        return _from_google(path)
    return None


def write_head_weights(weights, path):
    """Write `{"mlm": {...}, "nsp": {...}}` as safetensors in Hugging Face's names."""
    from safetensors.numpy import save_file

    tensors = {}
    for name, (group, key, transpose) in _HF_NAMES.items():
        if group in weights:
            value = np.asarray(weights[group][key], np.float32)
            tensors[name] = np.ascontiguousarray(value.T if transpose else value)
    save_file(tensors, str(path))
    return Path(path)


def _local_path(spec):
    from kerabert.backbone import PACKAGED_PRESETS, _packaged_preset_path

    spec = str(spec)
    if spec in PACKAGED_PRESETS:
        return _packaged_preset_path(spec)
    path = Path(spec).expanduser()
    if path.exists() or Path(str(path) + ".index").exists():
        return path
    return None  # a keras-hub handle: keras-hub presets ship no pretraining head


def _complete(found, names, source):
    groups = {}
    for name, (group, key, transpose) in names.items():
        if name in found:
            value = found[name]
            groups.setdefault(group, {})[key] = value.T if transpose else value
    for group, values in list(groups.items()):
        expected = {key for g, key, _ in names.values() if g == group}
        missing = sorted(expected - set(values))
        if missing:
            raise ValueError(f"{source}: incomplete {group} head, missing {missing}")
    return HeadWeights(str(source), groups)


def _from_safetensors(files, source):
    from safetensors import safe_open

    found = {}
    for file in files:
        with safe_open(str(file), framework="np") as f:
            for name in f.keys():
                canonical = _HF_ALIASES.get(name, name)
                if canonical in _HF_NAMES:
                    found[canonical] = f.get_tensor(name)
    return _complete(found, _HF_NAMES, source)


def _from_google(prefix):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    found = {name: reader.get_tensor(name) for name in _GOOGLE_NAMES if reader.has_tensor(name)}
    return _complete(found, _GOOGLE_NAMES, prefix)
