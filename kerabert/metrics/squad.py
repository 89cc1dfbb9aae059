"""SQuAD exact match and F1, computed exactly as the official evaluation scripts do.

`evaluate-v1.1.py` and `evaluate-v2.0.py` (Rajpurkar et al.) normalize answers the
same way (lower-case, drop punctuation, drop the articles a/an/the, collapse
whitespace) and take the best score over the gold answers of each question. They
differ on empty answers:

- v1.1: a prediction (or gold answer) that normalizes to nothing has F1 0, and every
  gold answer counts, even one that normalizes to nothing.
- v2.0: gold answers that normalize to nothing are dropped; a question left with no
  gold answer is unanswerable and its only gold answer is `""`; F1 of an empty
  prediction or gold is 1 when both are empty, else 0.

Scores are percentages (0-100), as the scripts print them.

Example:
```python
squad_scores(["Denver Broncos"], [["Denver Broncos", "The Broncos"]])
# {'exact_match': 100.0, 'f1': 100.0, 'examples': 1}
```
"""

from __future__ import annotations

import collections
import re
import string

VERSIONS = ("1.1", "2.0")
_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text):
    """Lower-case, remove punctuation, articles and extra whitespace (official order)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction, gold):
    """1 if both normalize to the same string, else 0."""
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction, gold, version="1.1"):
    """Token-overlap F1 of normalized answers (see the module doc for `version`)."""
    _check_version(version)
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(gold).split()
    if version == "2.0" and (not predicted or not expected):
        return float(predicted == expected)
    common = collections.Counter(predicted) & collections.Counter(expected)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(predicted)
    recall = same / len(expected)
    return 2 * precision * recall / (precision + recall)


def gold_answers(answers, version="1.1"):
    """The gold answers a question is scored against under `version`."""
    _check_version(version)
    answers = [str(a) for a in answers]
    if version == "2.0":
        answers = [a for a in answers if normalize_answer(a)] or [""]
    return answers


def question_scores(prediction, answers, version="1.1"):
    """`(exact_match, f1)` of one prediction: the best over the gold `answers`."""
    golds = gold_answers(answers, version)
    if not golds:  # v1.1 with no gold answer: the script would fail; score it 0
        return 0, 0.0
    return (
        max(exact_match(prediction, g) for g in golds),
        max(f1(prediction, g, version) for g in golds),
    )


def squad_scores(predictions, answers, version="1.1"):
    """Exact match and F1 (percent) of predicted answer texts against gold answer lists.

    Args:
        predictions: one predicted answer text per question (`""` for no answer).
        answers: one list of gold answer texts per question (empty: unanswerable).
        version: `"1.1"` or `"2.0"` (see the module doc).

    Returns:
        `{"exact_match", "f1", "examples"}`; for v2.0 also the scores on answerable
        (`has_answer_*`) and unanswerable (`no_answer_*`) questions, as the v2.0
        script reports them (`HasAns_*`, `NoAns_*`).
    """
    _check_version(version)
    predictions = [str(p) for p in predictions]
    answers = [list(a) for a in answers]
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions for {len(answers)} questions")
    scores = [question_scores(p, a, version) for p, a in zip(predictions, answers)]
    result = _summary(scores)
    if version == "2.0":
        has_answer = [bool(gold_answers(a, version) != [""]) for a in answers]
        for name, wanted in (("has_answer", True), ("no_answer", False)):
            subset = [s for s, h in zip(scores, has_answer) if h == wanted]
            if subset:
                part = _summary(subset)
                result[f"{name}_exact_match"] = part["exact_match"]
                result[f"{name}_f1"] = part["f1"]
                result[f"{name}_examples"] = part["examples"]
    return result


def _summary(scores):
    total = len(scores)
    return {
        "exact_match": 100.0 * sum(em for em, _ in scores) / total if total else 0.0,
        "f1": 100.0 * sum(f for _, f in scores) / total if total else 0.0,
        "examples": total,
    }


def _check_version(version):
    if version not in VERSIONS:
        raise ValueError(f"SQuAD version must be one of {VERSIONS}, got {version!r}")
