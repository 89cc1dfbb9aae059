"""RoBERTa: keras-hub's `RobertaBackbone` (XLM-RoBERTa's weight layout), byte-level BPE
tokenizer (`kerabert.byte_pair.BytePairTokenizer`)."""

from __future__ import annotations

import keras_hub

from kerabert.families import checks, xlm_roberta

MODEL_TYPE = "roberta"
PREFIX = "roberta."


def build(config, config_path, dtype=None):
    return xlm_roberta.build(config, config_path, dtype,
                             backbone_class=keras_hub.models.RobertaBackbone)


def load_weights(backbone, tensors, prefix, config):
    xlm_roberta.load_weights(backbone, tensors, prefix, config)


def tokenizer(path, lowercase):
    return checks.byte_pair_tokenizer(path, lowercase)
