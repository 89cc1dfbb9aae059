"""ALBERT: keras-hub's `AlbertBackbone` (shared layer groups, its own pooler),
SentencePiece tokenizer."""

from __future__ import annotations

import keras_hub

from kerabert import hf_weights
from kerabert.families import checks
from kerabert.families.encoder import wrap

MODEL_TYPE = "albert"
PREFIX = "albert."
BLOCK = {"query": "attention.query", "key": "attention.key", "value": "attention.value",
         "attention_output": "attention.dense", "attention_norm": "attention.LayerNorm",
         "intermediate": "ffn", "output": "ffn_output", "output_norm": "full_layer_layer_norm"}


def build(config, config_path, dtype=None):
    checks.expect(config, "position_embedding_type", ("absolute",), config_path,
                  default="absolute")
    checks.expect(config, "layer_norm_eps", (1e-12,), config_path, default=1e-12)
    activation = checks.activation(config, "hidden_act", config_path, default="gelu_new")
    layers = checks.field(config, "num_hidden_layers", config_path)
    groups = config.get("num_hidden_groups", 1)
    if layers % groups:
        raise checks.CheckpointError(
            f"{config_path}: num_hidden_layers {layers} is not a multiple of "
            f"num_hidden_groups {groups}")
    hidden = checks.field(config, "hidden_size", config_path)
    encoder = keras_hub.models.AlbertBackbone(
        vocabulary_size=checks.field(config, "vocab_size", config_path),
        num_layers=layers,
        num_heads=checks.field(config, "num_attention_heads", config_path),
        embedding_dim=config.get("embedding_size", 128),
        hidden_dim=hidden,
        intermediate_dim=checks.field(config, "intermediate_size", config_path),
        num_groups=groups,
        num_inner_repetitions=config.get("inner_group_num", 1),
        dropout=config.get("hidden_dropout_prob", 0.0),
        max_sequence_length=config.get("max_position_embeddings", 512),
        num_segments=config.get("type_vocab_size", 2), dtype=dtype)
    # keras-hub's ALBERT blocks use the tanh GELU, as Hugging Face's "gelu_new".
    return wrap(encoder, activation, built_in="gelu_approximate")


def load_weights(backbone, tensors, prefix, config):
    encoder = backbone.encoder
    ports = hf_weights.embedding_weights(*checks.embedding_layers(encoder))
    projection = encoder.embeddings_projection
    ports["encoder.embedding_hidden_mapping_in.weight"] = hf_weights.linear(projection.kernel)
    ports["encoder.embedding_hidden_mapping_in.bias"] = hf_weights.Port(projection.bias)
    for g, group in enumerate(encoder.transformer_layers):
        for j, block in enumerate(group):
            ports.update(hf_weights.transformer_block_weights(
                f"encoder.albert_layer_groups.{g}.albert_layers.{j}.", block, BLOCK))
    if f"{prefix}pooler.weight" in tensors:  # else the pooler keeps its initialisation
        ports["pooler.weight"] = hf_weights.linear(encoder.pooled_dense.kernel)
        ports["pooler.bias"] = hf_weights.Port(encoder.pooled_dense.bias)
    hf_weights.assign(ports, tensors, prefix)


def tokenizer(path, lowercase):
    return checks.sentencepiece_tokenizer(path, lowercase)
