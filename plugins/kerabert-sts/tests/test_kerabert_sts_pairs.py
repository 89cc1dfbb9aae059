"""Graded pairs derived from labelled texts (the plugin's real-data recipe)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from kerabert_sts import SentenceSimilarityHead
from kerabert_sts.pairs import graded_pairs, main, read_labelled

SHARED_DATA = Path(os.environ.get("KERABERT_SHARED_DATA",
                                  Path(__file__).resolve().parents[3].parent / "shared" / "data"))

# Three coarse labels with two fine labels each, three questions per fine label.
LABELS = [f"{coarse}:{fine}" for coarse, fines in
          [("HUM", ("ind", "gr")), ("LOC", ("city", "country")), ("NUM", ("date", "count"))]
          for fine in fines for _ in range(3)]
TEXTS = [f"question {i}" for i in range(len(LABELS))]


def expected_score(a, b):
    label = dict(zip(TEXTS, LABELS))
    if label[a] == label[b]:
        return 1.0
    return 0.5 if label[a].split(":")[0] == label[b].split(":")[0] else 0.0


def test_graded_pairs_follow_the_label_hierarchy():
    pairs = graded_pairs(TEXTS, LABELS, 30, seed=0)
    assert len(pairs) == 30
    assert Counter(score for _, _, score in pairs) == {1.0: 10, 0.5: 10, 0.0: 10}
    assert all(score == expected_score(a, b) for a, b, score in pairs)
    assert all(a != b for a, b, _ in pairs)
    assert len({frozenset((a, b)) for a, b, _ in pairs}) == 30  # unique, unordered
    assert graded_pairs(TEXTS, LABELS, 30, seed=0) == pairs  # deterministic
    assert graded_pairs(TEXTS, LABELS, 30, seed=1) != pairs


def test_flat_labels_give_two_levels_and_small_data_gives_fewer_pairs():
    pairs = graded_pairs(["a", "b", "c"], ["x", "x", "y"], 100, seed=0)
    # Only one same-label pair and two cross-label pairs exist.
    assert sorted(score for _, _, score in pairs) == [0.0, 0.0, 1.0]
    # 18 same-fine and 27 same-coarse pairs exist here; the last level still gets its share.
    counts = Counter(score for _, _, score in graded_pairs(TEXTS, LABELS, 90, seed=0))
    assert counts == {1.0: 18, 0.5: 27, 0.0: 30}


def test_command_writes_pairs_the_head_reads(tmp_path):
    source = tmp_path / "trec.txt"
    source.write_text("".join(f"{label} {text} ?\n" for label, text in zip(LABELS, TEXTS)),
                      encoding="utf-8")
    output = tmp_path / "pairs.tsv"
    assert main([str(source), str(output), "--pairs", "12", "--seed", "3"]) == 0
    examples = SentenceSimilarityHead(score_range=(0, 1)).read(output)
    assert len(examples) == 12
    assert set(examples["score"]) == {0.0, 0.5, 1.0}
    assert all(text.endswith(" ?") for text in examples["text"] + examples["text_pair"])


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED_DATA / "trec").is_dir(), reason=f"no TREC data at {SHARED_DATA}")
def test_real_trec_file_gives_balanced_pairs():
    texts, labels = read_labelled(SHARED_DATA / "trec" / "dev.txt")
    assert len(texts) == 545 and len(set(l.split(":")[0] for l in labels)) == 6
    pairs = graded_pairs(texts, labels, 1500, seed=1)
    assert Counter(score for _, _, score in pairs) == {1.0: 500, 0.5: 500, 0.0: 500}
