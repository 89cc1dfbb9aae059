"""kerabert's heads on the other BERT-family backbones, through `check_head` (adapt,
preprocess, dataset, build, train, predict, score).

Each family runs one head here, so that every head and every family is covered within the
suite's time (saving, reloading and the raw-text SavedModel of a family model are in
tests/families/test_families.py and tests/export/test_families_export.py);
`benchmarks/family_heads.py` runs every head on every family through every step (its
last run is in docs/checkpoints.md).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import tensorflow as tf

from kerabert.backbone import load_backbone
from kerabert.testing import check_head
from tests.heads.test_conformance import HEADS, MASKED, _examples

# check_head trains and traces every path: tens of seconds each on 2 cores.
pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parents[1] / "fixtures" / "families"
LENGTH = 64  # SentencePiece splits the tiny vocabulary's words into many pieces
# family -> head: the pair layout of XLM-R, offsets through ALBERT's normalizer, the
# embedding projection of ELECTRA under the tied masked-LM decoder, ...
PAIRS = {"xlm_roberta": "text-classification", "albert": "ner", "electra": "masked-lm",
         "distilbert": "qa", "deberta_v3": "sentiment", "roberta": "ner"}


def head_class(name):
    module, attribute = HEADS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def examples(name, family):
    if name == "masked-lm":  # the corpus rows in this family's own token ids
        _, tokenizer = load_backbone(FIXTURES / family, load_weights=False)
        texts = [t.replace("[MASK]", "city") for t in MASKED]
        ids = tokenizer.pack([tokenizer(tf.constant(texts))], LENGTH)["token_ids"]
        return {"text": MASKED, "token_ids": [row.tolist() for row in ids.numpy()]}
    found = _examples(name)
    if name == "text-classification":  # sentence pairs
        found = dict(found, text_pair=["a fine plot", "very dull", "great", "no fun"] * 2)
    return found


@pytest.mark.parametrize("family, name", sorted(PAIRS.items()))
def test_head_on_family_backbone(family, name):
    options = {"text_pair": True} if name == "text-classification" else None
    report = check_head(head_class(name), examples(name, family), options=options,
                        backbone=str(FIXTURES / family), sequence_length=LENGTH,
                        steps=("train", "predict", "score"), export=False,
                        raise_on_failure=False)
    assert report.ok, str(report)
