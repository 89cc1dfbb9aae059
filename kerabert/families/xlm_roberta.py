"""XLM-RoBERTa: keras-hub's `XLMRobertaBackbone`, SentencePiece tokenizer.

Hugging Face's RoBERTa embeddings keep `padding_idx + 1` unused position rows and add a
one-row token-type embedding to every token; keras-hub's backbone has neither, so the
position table is read from row `padding_idx + 1` on and the token-type row is folded
into it (exactly the same sums).
"""

from __future__ import annotations

import keras_hub

from kerabert import hf_weights
from kerabert.families import checks
from kerabert.families.encoder import wrap

MODEL_TYPE = "xlm-roberta"
PREFIX = "roberta."


def position_offset(config):
    return config.get("pad_token_id", 1) + 1


def build(config, config_path, dtype=None, backbone_class=None):
    checks.expect(config, "position_embedding_type", ("absolute",), config_path,
                  default="absolute")
    checks.expect(config, "layer_norm_eps", (1e-5,), config_path, default=1e-5)
    checks.expect(config, "type_vocab_size", (1,), config_path, default=1)
    activation = checks.activation(config, "hidden_act", config_path)
    positions = checks.field(config, "max_position_embeddings", config_path)
    encoder = (backbone_class or keras_hub.models.XLMRobertaBackbone)(
        vocabulary_size=checks.field(config, "vocab_size", config_path),
        num_layers=checks.field(config, "num_hidden_layers", config_path),
        num_heads=checks.field(config, "num_attention_heads", config_path),
        hidden_dim=checks.field(config, "hidden_size", config_path),
        intermediate_dim=checks.field(config, "intermediate_size", config_path),
        dropout=config.get("hidden_dropout_prob", 0.1),
        max_sequence_length=positions - position_offset(config), dtype=dtype)
    return wrap(encoder, activation, built_in="gelu")


def load_weights(backbone, tensors, prefix, config):
    encoder = backbone.encoder
    offset = position_offset(config)
    token_type = tensors.get(prefix + "embeddings.token_type_embeddings.weight")[0]
    embeddings = encoder.get_layer("embeddings")
    position = embeddings.position_embedding.position_embeddings
    ports = {
        "embeddings.word_embeddings.weight": hf_weights.Port(embeddings.token_embedding.embeddings),
        "embeddings.position_embeddings.weight": hf_weights.Port(
            position, to_keras=lambda x, shape: x[offset:offset + shape[0]] + token_type),
        **hf_weights.norm("embeddings.LayerNorm", encoder.get_layer("embeddings_layer_norm")),
    }
    for i, block in enumerate(encoder.transformer_layers):
        ports.update(hf_weights.transformer_block_weights(f"encoder.layer.{i}.", block))
    hf_weights.assign(ports, tensors, prefix)


def tokenizer(path, lowercase):
    return checks.sentencepiece_tokenizer(path, lowercase)
