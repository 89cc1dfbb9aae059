"""ELECTRA (the discriminator): keras-hub's `ElectraBackbone`, WordPiece tokenizer."""

from __future__ import annotations

import keras_hub

from kerabert import hf_weights
from kerabert.families import checks
from kerabert.families.encoder import wrap

MODEL_TYPE = "electra"
PREFIX = "electra."


def build(config, config_path, dtype=None):
    checks.expect(config, "position_embedding_type", ("absolute",), config_path,
                  default="absolute")
    checks.expect(config, "layer_norm_eps", (1e-12,), config_path, default=1e-12)
    activation = checks.activation(config, "hidden_act", config_path)
    hidden = checks.field(config, "hidden_size", config_path)
    encoder = keras_hub.models.ElectraBackbone(
        vocab_size=checks.field(config, "vocab_size", config_path),
        num_layers=checks.field(config, "num_hidden_layers", config_path),
        num_heads=checks.field(config, "num_attention_heads", config_path),
        hidden_dim=hidden,
        embedding_dim=config.get("embedding_size", hidden),
        intermediate_dim=checks.field(config, "intermediate_size", config_path),
        dropout=config.get("hidden_dropout_prob", 0.1),
        max_sequence_length=config.get("max_position_embeddings", 512),
        num_segments=config.get("type_vocab_size", 2), dtype=dtype)
    # keras-hub's ELECTRA blocks use the tanh GELU; Hugging Face's "gelu" is exact.
    return wrap(encoder, activation, built_in="gelu_approximate")


def load_weights(backbone, tensors, prefix, config):
    encoder = backbone.encoder
    ports = hf_weights.embedding_weights(*checks.embedding_layers(encoder))
    if hasattr(encoder, "embeddings_projection"):  # embedding_size != hidden_size
        projection = encoder.embeddings_projection
        ports["embeddings_project.weight"] = hf_weights.linear(projection.kernel)
        ports["embeddings_project.bias"] = hf_weights.Port(projection.bias)
    for i, block in enumerate(encoder.transformer_layers):
        ports.update(hf_weights.transformer_block_weights(f"encoder.layer.{i}.", block))
    hf_weights.assign(ports, tensors, prefix)


def tokenizer(path, lowercase):
    return checks.wordpiece_tokenizer(path, lowercase)
