"""`kerabert.testing.check_head` over every head kerabert's entry points declare and
every head of the plugins in `plugins/` (tiny backbone): a new head needs examples here.

The check includes the `decode` step: a hand-written `decode` must agree with the
decoding derived from the head's `serving_outputs` on the same model outputs.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import tomllib
from pathlib import Path

import pytest

from kerabert.testing import check_head, tiny_tokenizer

# Exports, document runs and multi-process tests: minutes on 2 cores.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LENGTH = 32


def _declared_heads():
    """`{name: "module:Class"}` of kerabert's own entry points and of `plugins/*`."""
    heads = {}
    for dist in importlib.metadata.distributions():
        if (dist.metadata["Name"] or "").lower() == "kerabert":
            heads.update({ep.name: ep.value for ep in dist.entry_points
                          if ep.group == "kerabert.heads"})
    with open(REPO / "pyproject.toml", "rb") as f:  # the source tree's own declaration
        heads.update(tomllib.load(f)["project"]["entry-points"]["kerabert.heads"])
    for pyproject in sorted(REPO.glob("plugins/*/pyproject.toml")):
        with open(pyproject, "rb") as f:
            declared = tomllib.load(f)["project"].get("entry-points", {})
        heads.update(declared.get("kerabert.heads", {}))
    return heads


HEADS = _declared_heads()

WORDS = [["john", "smith", "lives", "in", "paris"], ["the", "team", "won"],
         ["apple", "is", "in", "london"], ["a", "good", "film"]] * 2
TAGS = [["B-PER", "I-PER", "O", "O", "B-LOC"], ["O", "O", "O"],
        ["B-ORG", "O", "O", "B-LOC"], ["O", "O", "O"]] * 2
CONTEXTS = ["john smith lives in paris .", "the team won the game on monday ."] * 4
QUESTIONS = ["who lives in paris ?", "when did the team win ?"] * 4
ANSWERS = ["john smith", "monday"] * 4
MASKED = ["the [MASK] lives in paris .", "a good [MASK] and a bad book ."] * 4


def _packed(texts):
    """Corpus rows for the masked-LM head, with check_head's own tiny vocabulary."""
    import tensorflow as tf

    tokenizer = tiny_tokenizer(texts)
    packed = tokenizer.pack([tokenizer(tf.constant(texts))], LENGTH)
    return [row.tolist() for row in packed["token_ids"].numpy()]


def _examples(name):
    if name in ("sentiment", "text-classification"):
        return {"text": ["a good film", "a bad plot", "great fun", "very dull"] * 2,
                "label": ["pos", "neg", "pos", "neg"] * 2}
    if name == "ner":
        return {"text": WORDS, "tags": TAGS}
    if name == "qa":
        return {"question": QUESTIONS, "context": CONTEXTS,
                "answer_start": [c.index(a) for c, a in zip(CONTEXTS, ANSWERS)],
                "answer_text": ANSWERS}
    if name == "masked-lm":
        return {"text": MASKED, "token_ids": _packed([t.replace("[MASK]", "city")
                                                      for t in MASKED])}
    if name == "sentence-similarity":
        return {"text": ["a man plays a guitar", "a dog runs", "the city sleeps", "a film"]
                * 2, "text_pair": ["someone plays music", "a cat sleeps", "the city is quiet",
                                   "a movie"] * 2,
                "score": [4.5, 0.5, 3.0, 5.0, 4.0, 1.0, 2.5, 4.8]}
    return None


def test_every_core_head_is_declared():
    assert {"sentiment", "text-classification", "ner", "qa", "masked-lm"} <= set(HEADS)
    assert "sentence-similarity" in HEADS  # plugins/kerabert-sts


@pytest.mark.parametrize("name", sorted(HEADS))
def test_declared_head_conforms(name):
    examples = _examples(name)
    assert examples is not None, f"head {name!r}: add conformance examples to {__file__}"
    module, _, attribute = HEADS[name].partition(":")
    head_class = getattr(importlib.import_module(module), attribute)
    report = check_head(head_class, examples, sequence_length=LENGTH)
    assert report.ok, str(report)
    decode = report.result("decode")
    assert decode.status == "passed", str(report)
