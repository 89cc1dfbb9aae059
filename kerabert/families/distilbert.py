"""DistilBERT: keras-hub's `DistilBertBackbone`, WordPiece tokenizer, no segment ids."""

from __future__ import annotations

import keras_hub

from kerabert import hf_weights
from kerabert.families import checks
from kerabert.families.encoder import wrap

MODEL_TYPE = "distilbert"
PREFIX = "distilbert."
BLOCK = {"query": "attention.q_lin", "key": "attention.k_lin", "value": "attention.v_lin",
         "attention_output": "attention.out_lin", "attention_norm": "sa_layer_norm",
         "intermediate": "ffn.lin1", "output": "ffn.lin2", "output_norm": "output_layer_norm"}


def build(config, config_path, dtype=None):
    checks.expect(config, "sinusoidal_pos_embds", (False,), config_path, default=False)
    activation = checks.activation(config, "activation", config_path)
    encoder = keras_hub.models.DistilBertBackbone(
        vocabulary_size=checks.field(config, "vocab_size", config_path),
        num_layers=checks.field(config, "n_layers", config_path),
        num_heads=checks.field(config, "n_heads", config_path),
        hidden_dim=checks.field(config, "dim", config_path),
        intermediate_dim=checks.field(config, "hidden_dim", config_path),
        dropout=config.get("dropout", 0.1),
        max_sequence_length=config.get("max_position_embeddings", 512), dtype=dtype)
    # keras-hub's DistilBERT blocks use the exact GELU, as Hugging Face's "gelu".
    return wrap(encoder, activation, built_in="gelu")


def load_weights(backbone, tensors, prefix, config):
    encoder = backbone.encoder
    embeddings = encoder.get_layer("token_and_position_embedding")
    ports = hf_weights.embedding_weights(embeddings.token_embedding,
                                         embeddings.position_embedding,
                                         encoder.get_layer("embeddings_layer_norm"))
    for i, block in enumerate(encoder.transformer_layers):
        ports.update(hf_weights.transformer_block_weights(f"transformer.layer.{i}.", block, BLOCK))
    hf_weights.assign(ports, tensors, prefix)


def tokenizer(path, lowercase):
    return checks.wordpiece_tokenizer(path, lowercase)
