"""SQuAD EM/F1 against hand-computed cases of the official v1.1 and v2.0 scripts."""

import pytest

from kerabert.metrics.squad import exact_match, f1, normalize_answer, squad_scores


@pytest.mark.parametrize("text, normalized", [
    ("The Denver Broncos!", "denver broncos"),
    ("  an  Apple,\ta pear ", "apple pear"),
    ("Theory of the art", "theory of art"),  # 'the' only as a whole word
    ("U.S.-led", "usled"),  # punctuation removed, not replaced
    ("a", ""),
    ("Élan, «quoted»", "élan «quoted»"),  # only ASCII punctuation is removed
])
def test_normalization(text, normalized):
    assert normalize_answer(text) == normalized


def test_exact_match_and_f1_by_hand():
    assert exact_match("the Broncos", "Broncos.") == 1
    assert exact_match("Denver Broncos", "Broncos") == 0
    # pred {denver, broncos}, gold {broncos}: precision 1/2, recall 1 -> 2/3
    assert f1("Denver Broncos", "Broncos") == pytest.approx(2 / 3)
    # repeated tokens count with multiplicity: pred [a1 a1 b], gold [a1 b b]
    # common = {a1: 1, b: 1} = 2, precision 2/3, recall 2/3
    assert f1("x x y", "x y y") == pytest.approx(2 / 3)
    assert f1("cat", "dog") == 0.0


def test_empty_answers_differ_between_versions():
    # v1.1: no token overlap -> 0, even when both are empty after normalization.
    assert f1("", "") == 0.0
    assert f1("the", "a") == 0.0
    assert exact_match("the", "a") == 1
    # v2.0: empty vs empty is a match, empty vs non-empty is not.
    assert f1("", "", version="2.0") == 1.0
    assert f1("", "Broncos", version="2.0") == 0.0
    assert f1("Broncos", "", version="2.0") == 0.0


def test_max_over_gold_answers():
    result = squad_scores(
        ["Denver Broncos", "Carolina", "wrong"],
        [["Broncos", "Denver Broncos"], ["Carolina Panthers"], ["right"]],
    )
    # question 1: EM 1 F1 1; question 2: EM 0 F1 2/3; question 3: 0 and 0.
    assert result["exact_match"] == pytest.approx(100 / 3)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert result["examples"] == 3


def test_v2_no_answer_questions():
    predictions = ["", "Paris", "", "the"]
    answers = [[], [], ["Paris"], ["a", "London"]]
    result = squad_scores(predictions, answers, version="2.0")
    # 1: no answer predicted for a no-answer question: 1/1.
    # 2: an answer for a no-answer question: 0/0.
    # 3: no answer for an answerable question: 0/0.
    # 4: golds that normalize to nothing are dropped ('a'), so only 'London' is left.
    assert result["exact_match"] == pytest.approx(25.0)
    assert result["f1"] == pytest.approx(25.0)
    assert result["no_answer_exact_match"] == pytest.approx(50.0)
    assert result["no_answer_examples"] == 2
    assert result["has_answer_exact_match"] == 0.0
    assert result["has_answer_examples"] == 2
    # Under v1.1 the same 'a' gold stays and 'the' matches it exactly.
    assert squad_scores(["the"], [["a", "London"]])["exact_match"] == 100.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="2 predictions for 1 questions"):
        squad_scores(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="version"):
        squad_scores(["a"], [["a"]], version="3")
