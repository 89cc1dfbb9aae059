"""Evaluation reports for NER and QA, from hand-made predictions (no model needed)."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from kerabert.data.tables import Examples
from kerabert.reports import plot_confusion, write_report
from kerabert.reports.evaluation import prf_rows, question_type

PNG = b"\x89PNG\r\n\x1a\n"


def _model(head):
    return types.SimpleNamespace(head=head)


def test_prf_rows_match_hand_counts():
    rows = prf_rows(np.array([3, 0]), np.array([1, 2]), np.array([0, 1]), ["a", "b"])
    a, b, macro, micro = rows
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == (0.75, 1.0,
                                                                    pytest.approx(6 / 7), 3)
    assert (b["precision"], b["recall"], b["f1"], b["support"]) == (0.0, 0.0, 0.0, 1)
    assert macro["f1"] == pytest.approx((6 / 7) / 2)
    assert micro["precision"] == pytest.approx(3 / 6) and micro["recall"] == pytest.approx(3 / 4)


def test_ner_report_per_type_and_confusion(tmp_path):
    from kerabert.heads.tagging import TokenClassificationHead

    head = TokenClassificationHead(labels=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    examples = Examples({"text": [["john", "smith", "in", "paris"], ["berlin", "is", "big"]],
                         "tags": [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O", "O"]]},
                        source="dev.conll", lines=[1, 6])
    predictions = [
        {"tags": ["B-PER", "I-PER", "O", "B-PER"], "entities": [
            {"type": "PER", "text": "john smith", "word_start": 0, "word_end": 2, "score": 0.9},
            {"type": "PER", "text": "paris", "word_start": 3, "word_end": 4, "score": 0.8}]},
        {"tags": ["B-LOC", "O", "O"], "entities": [
            {"type": "LOC", "text": "berlin", "word_start": 0, "word_end": 1, "score": 0.7}]},
    ]
    summary = write_report(_model(head), examples, predictions, tmp_path)
    assert summary["task"] == "tagging"
    per_type = {row["type"]: row for row in summary["per_class"]}
    assert per_type["PER"]["precision"] == 0.5 and per_type["PER"]["recall"] == 1.0
    assert per_type["LOC"]["precision"] == 1.0 and per_type["LOC"]["recall"] == 0.5
    assert summary["confusion"]["labels"] == ["LOC", "PER", "O"]
    # Word level: paris is LOC predicted PER.
    assert summary["confusion"]["matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 3]]
    errors = [json.loads(x) for x in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert errors == [{"id": "1", "text": "john smith in paris", "wrong": ["PER: paris"],
                       "missed": ["LOC: paris"], "score": 0.8}]
    assert (tmp_path / "confusion.png").read_bytes().startswith(PNG)


def test_qa_report_by_question_type(tmp_path):
    from kerabert.heads.span import QuestionAnsweringHead

    head = QuestionAnsweringHead(allow_no_answer=False)
    examples = Examples({
        "id": ["q1", "q2", "q3"],
        "question": ["Who wrote it?", "What is it?", "who sang?"],
        "context": ["Ann wrote it.", "It is a red book.", "Bob sang."],
        "answers": [["Ann"], ["a red book"], ["Bob"]],
    }, source="dev.json")
    predictions = [{"answer": "Ann", "score": 3.0}, {"answer": "book", "score": 5.0},
                   {"answer": "sang", "score": 1.0}]
    summary = write_report(_model(head), examples, predictions, tmp_path)
    rows = {row["question type"]: row for row in summary["per_class"]}
    assert rows["who"]["examples"] == 2 and rows["who"]["exact_match"] == 50.0
    # "book" against "a red book": articles are dropped, so precision 1, recall 1/2.
    assert rows["what"]["exact_match"] == 0.0
    assert rows["what"]["f1"] == pytest.approx(100 * 2 / 3)
    assert rows["all"]["examples"] == 3
    errors = [json.loads(x) for x in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert [e["id"] for e in errors] == ["q2", "q3"]  # most confident first
    assert errors[0]["question"] == "What is it?" and "context" not in errors[0]
    assert (tmp_path / "by_type.png").read_bytes().startswith(PNG)


def test_question_type_is_the_first_word():
    assert question_type("  How many? ") == "how"
    assert question_type("") == "(empty)"


def test_confusion_png_has_many_labels_readable(tmp_path):
    labels = [f"class {i}" for i in range(12)]
    matrix = np.random.default_rng(0).integers(0, 20, (12, 12))
    path = plot_confusion(matrix, labels, tmp_path / "c.png")
    assert path.read_bytes().startswith(PNG)
