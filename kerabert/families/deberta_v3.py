"""DeBERTa-v3 (`model_type: deberta-v2`): keras-hub's `DebertaV3Backbone` (disentangled
relative attention), SentencePiece tokenizer, no segment ids."""

from __future__ import annotations

import keras_hub

from kerabert import hf_weights
from kerabert.families import checks
from kerabert.families.encoder import EncoderBackbone

MODEL_TYPE = "deberta-v2"
PREFIX = "deberta."
BLOCK = dict(hf_weights.BERT_BLOCK, query="attention.self.query_proj",
             key="attention.self.key_proj", value="attention.self.value_proj")


def build(config, config_path, dtype=None):
    # What keras-hub's DeBERTa-v3 computes; DeBERTa-v1/v2 checkpoints differ here.
    checks.expect(config, "relative_attention", (True,), config_path)
    checks.expect(config, "position_biased_input", (False,), config_path)
    checks.expect(config, "share_att_key", (True,), config_path)
    checks.expect(config, "norm_rel_ebd", ("layer_norm",), config_path)
    checks.expect(config, "type_vocab_size", (0,), config_path, default=0)
    checks.expect(config, "layer_norm_eps", (1e-7,), config_path)
    checks.expect(config, "hidden_act", ("gelu",), config_path, default="gelu")
    if sorted(config.get("pos_att_type") or []) != ["c2p", "p2c"]:
        raise checks.CheckpointError(
            f"{config_path}: pos_att_type {config.get('pos_att_type')!r} is not supported "
            "(keras-hub's DeBERTa-v3 needs ['p2c', 'c2p'])")
    positions = checks.field(config, "max_position_embeddings", config_path)
    checks.expect(config, "max_relative_positions", (-1, positions), config_path)
    hidden = checks.field(config, "hidden_size", config_path)
    checks.expect(config, "embedding_size", (hidden, None), config_path)
    buckets = checks.field(config, "position_buckets", config_path)
    if buckets <= 0:
        raise checks.CheckpointError(f"{config_path}: position_buckets {buckets} must be > 0")
    encoder = keras_hub.models.DebertaV3Backbone(
        vocabulary_size=checks.field(config, "vocab_size", config_path),
        num_layers=checks.field(config, "num_hidden_layers", config_path),
        num_heads=checks.field(config, "num_attention_heads", config_path),
        hidden_dim=hidden,
        intermediate_dim=checks.field(config, "intermediate_size", config_path),
        dropout=config.get("hidden_dropout_prob", 0.1),
        max_sequence_length=positions, bucket_size=buckets, dtype=dtype)
    return EncoderBackbone(encoder)


def load_weights(backbone, tensors, prefix, config):
    encoder = backbone.encoder
    relative = encoder.get_layer("rel_embedding")
    ports = {
        "embeddings.word_embeddings.weight": hf_weights.Port(encoder.token_embedding.embeddings),
        **hf_weights.norm("embeddings.LayerNorm", encoder.get_layer("embeddings_layer_norm")),
        "encoder.rel_embeddings.weight": hf_weights.Port(relative.rel_embeddings),
        **hf_weights.norm("encoder.LayerNorm", relative.layer_norm),
    }
    for i, block in enumerate(encoder.transformer_layers):
        ports.update(hf_weights.transformer_block_weights(f"encoder.layer.{i}.", block, BLOCK))
    hf_weights.assign(ports, tensors, prefix)


def tokenizer(path, lowercase):
    return checks.sentencepiece_tokenizer(path, lowercase)
