"""Entity-level scores on hand-made cases whose answers are known."""

import pytest

from kerabert.metrics.entities import entity_scores


def test_exact_entities_only_count():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    # PER boundary wrong (1 FP + 1 FN), LOC right, ORG missed.
    predicted = [["B-PER", "O", "O", "B-LOC"], ["O", "O"]]
    scores = entity_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(1 / 2)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    assert scores["token_accuracy"] == pytest.approx(4 / 6)
    assert scores["entities"] == 3
    assert scores["per_type"]["LOC"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0,
                                         "support": 1}
    assert scores["per_type"]["PER"]["f1"] == 0.0
    assert scores["per_type"]["ORG"]["recall"] == 0.0


def test_i_after_o_is_an_entity_as_in_conlleval():
    gold = [["O", "B-PER", "I-PER"]]
    assert entity_scores(gold, [["O", "I-PER", "I-PER"]])["f1"] == 1.0
    # A type change inside a span splits it into two wrong entities.
    split = entity_scores(gold, [["O", "B-PER", "I-LOC"]])
    assert split["precision"] == 0.0 and split["recall"] == 0.0


def test_bioes_scores_like_iob2():
    gold = [["B-PER", "E-PER", "S-LOC"]]
    predicted = [["B-PER", "E-PER", "O"]]
    scores = entity_scores(gold, predicted, scheme="BIOES")
    assert scores["precision"] == 1.0
    assert scores["recall"] == 0.5


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="sentence 0"):
        entity_scores([["O", "O"]], [["O"]])
