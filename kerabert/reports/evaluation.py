"""Evaluation reports people can read: per-class scores, confusion matrices (tables and
PNGs), the worst errors, and every prediction, written to one folder.

What is written depends on the task the predictions show:

- single-label classification: per-class precision/recall/F1, the confusion matrix
  (`confusion.csv`, `confusion.md`, `confusion.png`), errors ranked by the confidence of
  the wrong label;
- multi-label classification: per-label precision/recall/F1, errors ranked by how far
  the scores are from the gold labels;
- NER: per-entity-type precision/recall/F1, the word-level confusion of entity types,
  errors ranked by the confidence of a wrong entity;
- QA: exact match and F1 by question type (the question's first word, `by_type.png`),
  errors ranked by the confidence of a wrong answer.

Every report has `report.md` (all tables), `report.json`, `errors.jsonl` and
`predictions.jsonl` (id, input, gold, prediction per example).

Example:
```python
from kerabert.reports import write_report

summary = write_report(model, examples, model.predict_examples(examples), "reports/dev")
```
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kerabert.reports import plots
from kerabert.reports.tables import markdown_table, write_csv, write_jsonl

PRF_COLUMNS = ["precision", "recall", "f1", "support"]
NOT_SHOWN = ("context",)  # long; the id finds it in the data


def example_ids(examples: Mapping[str, Any]) -> list[str]:
    """Each example's id: its `id` field, else its line in the source file, else its
    position (from 1)."""
    size = len(next(iter(examples.values()))) if examples else 0
    if "id" in examples:
        return [str(i) for i in examples["id"]]
    lines = getattr(examples, "lines", None)
    if lines and len(lines) == size:
        return [str(line) for line in lines]
    return [str(i + 1) for i in range(size)]


def as_text(value: Any) -> str:
    """An input field as one string (pre-split words joined by spaces)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return " ".join(str(v) for v in value)
    return str(value)


def prf_rows(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray,
             names: Sequence[str], key: str = "label") -> list[dict[str, Any]]:
    """Per-class precision/recall/F1/support rows from count vectors, then the macro
    and micro averages."""
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=tp + fp > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=tp + fn > 0)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=tp > 0)
    rows = [{key: name, "precision": float(p), "recall": float(r), "f1": float(f),
             "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, tp + fn)]
    seen = (tp + fp + fn) > 0
    T, P, N = tp.sum(), fp.sum(), fn.sum()
    rows.append({key: "macro avg", "precision": float(precision[seen].mean()) if seen.any()
                 else 0.0, "recall": float(recall[seen].mean()) if seen.any() else 0.0,
                 "f1": float(f1[seen].mean()) if seen.any() else 0.0,
                 "support": int(T + N)})
    rows.append({key: "micro avg", "precision": float(T / (T + P)) if T + P else 0.0,
                 "recall": float(T / (T + N)) if T + N else 0.0,
                 "f1": float(2 * T / (2 * T + P + N)) if T else 0.0, "support": int(T + N)})
    return rows


def confusion_matrix(gold: Sequence[str], predicted: Sequence[str],
                     labels: Sequence[str]) -> np.ndarray:
    """Counts `[true, predicted]` over `labels` (values outside them are dropped)."""
    index = {label: i for i, label in enumerate(labels)}
    g = np.array([index.get(x, -1) for x in gold], dtype=np.int64)
    p = np.array([index.get(x, -1) for x in predicted], dtype=np.int64)
    keep = (g >= 0) & (p >= 0)
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, (g[keep], p[keep]), 1)
    return matrix


def _confusion_rows(matrix: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
    return [{"true \\ predicted": label, **{c: int(v) for c, v in zip(labels, row)}}
            for label, row in zip(labels, matrix)]


# -- per task ------------------------------------------------------------------------------
def _classification(head: Any, examples: Mapping[str, Any], predictions: list[dict],
                    inputs: list[dict], worst: int) -> dict[str, Any]:
    names = list(head.output_labels)
    rename = getattr(head, "label_names", None) or {}
    gold = [rename.get(str(g), str(g)) for g in examples["label"]]
    predicted = [p["label"] for p in predictions]
    matrix = confusion_matrix(gold, predicted, names)
    tp = np.diag(matrix)
    rows = prf_rows(tp, matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp, names)
    wrong = [i for i, (g, p) in enumerate(zip(gold, predicted)) if g != p]
    wrong.sort(key=lambda i: -predictions[i]["score"])
    errors = [{**inputs[i], "gold": gold[i], "predicted": predicted[i],
               "score": round(predictions[i]["score"], 4)} for i in wrong[:worst]]
    return {"per_class": rows, "class_key": "label", "matrix": matrix, "matrix_labels": names,
            "gold": gold, "errors": errors,
            "error_columns": [*inputs[0], "gold", "predicted", "score"] if inputs else []}


def _multi_label(head: Any, examples: Mapping[str, Any], predictions: list[dict],
                 inputs: list[dict], worst: int) -> dict[str, Any]:
    names = list(head.output_labels)
    rename = getattr(head, "label_names", None) or {}
    gold = [sorted(rename.get(str(g), str(g)) for g in row) for row in examples["label"]]
    index = {n: i for i, n in enumerate(names)}
    g_hot = np.zeros((len(gold), len(names)))
    p_hot = np.zeros_like(g_hot)
    scores = np.array([[p["scores"][n] for n in names] for p in predictions])
    for i, (g, p) in enumerate(zip(gold, predictions)):
        g_hot[i, [index[x] for x in g if x in index]] = 1
        p_hot[i, [index[x] for x in p["labels"]]] = 1
    tp = (g_hot * p_hot).sum(axis=0)
    rows = prf_rows(tp, (p_hot * (1 - g_hot)).sum(axis=0), (g_hot * (1 - p_hot)).sum(axis=0),
                    names)
    distance = np.abs(scores - g_hot).max(axis=1)
    wrong = [i for i in np.argsort(-distance) if (g_hot[i] != p_hot[i]).any()]
    errors = [{**inputs[i], "gold": gold[i], "predicted": predictions[i]["labels"],
               "distance": round(float(distance[i]), 4)} for i in wrong[:worst]]
    return {"per_class": rows, "class_key": "label", "gold": gold, "errors": errors,
            "error_columns": [*inputs[0], "gold", "predicted", "distance"] if inputs else []}


def _entity_type(tag: str) -> str:
    return "O" if tag == "O" else re.sub(r"^[BIESLU]-", "", tag)


def _entities(tags: Sequence[str], scheme: str) -> set[tuple[str, int, int]]:
    from kerabert.data.conll import tag_spans

    return set(tag_spans(list(tags), scheme))


def _tagging(head: Any, examples: Mapping[str, Any], predictions: list[dict],
             inputs: list[dict], worst: int) -> dict[str, Any]:
    from kerabert.metrics.entities import entity_scores

    gold_tags = [list(t) for t in examples["tags"]]
    scores = entity_scores(gold_tags, [p["tags"] for p in predictions], head.scheme)
    rows = [{"type": kind, **values} for kind, values in scores["per_type"].items()]
    rows.append({"type": "micro avg", "precision": scores["precision"],
                 "recall": scores["recall"], "f1": scores["f1"],
                 "support": scores["entities"]})
    types = sorted({_entity_type(t) for tags in gold_tags for t in tags} - {"O"}) + ["O"]
    gold_flat = [_entity_type(t) for tags in gold_tags for t in tags]
    pred_flat = [_entity_type(t) for p in predictions for t in p["tags"]]
    matrix = confusion_matrix(gold_flat, pred_flat, types)
    errors, ranked = [], []
    for i, p in enumerate(predictions):
        gold_set = _entities(gold_tags[i], head.scheme)
        wrong = [e for e in p["entities"]
                 if (e["type"], e["word_start"], e["word_end"]) not in gold_set]
        missed = gold_set - {(e["type"], e["word_start"], e["word_end"])
                             for e in p["entities"]}
        if wrong or missed:
            ranked.append((max((e["score"] for e in wrong), default=0.0), i, wrong, missed))
    ranked.sort(key=lambda r: -r[0])
    for confidence, i, wrong, missed in ranked[:worst]:
        words = [as_text(w) for w in examples["text"][i]]
        errors.append({
            **inputs[i],
            "wrong": [f"{e['type']}: {e['text']}" for e in wrong],
            "missed": [f"{kind}: {' '.join(words[a:b])}" for kind, a, b in sorted(missed)],
            "score": round(confidence, 4),
        })
    return {"per_class": rows, "class_key": "type", "matrix": matrix, "matrix_labels": types,
            "matrix_title": "entity types per word", "gold": gold_tags, "errors": errors,
            "error_columns": [*inputs[0], "wrong", "missed", "score"] if inputs else []}


def question_type(question: str) -> str:
    """A question's type: its first word, lower-cased (`"what"`, `"who"`, `"how"`)."""
    words = re.findall(r"[\w']+", question.lower())
    return words[0] if words else "(empty)"


def _qa(head: Any, examples: Mapping[str, Any], predictions: list[dict],
        inputs: list[dict], worst: int) -> dict[str, Any]:
    from kerabert.metrics.squad import question_scores

    if "answers" in examples:
        golds = [list(a) for a in examples["answers"]]
    else:
        golds = [[t] if t else [] for t in examples["answer_text"]]
    version = "2.0" if head.allow_no_answer or any(not g for g in golds) else "1.1"
    scored = [question_scores(p["answer"], g, version) for p, g in zip(predictions, golds)]
    types = [question_type(q) for q in examples["question"]]
    counts: dict[str, int] = {}
    for kind in types:
        counts[kind] = counts.get(kind, 0) + 1
    # The 12 most frequent first words; the rest together.
    common = sorted(counts, key=lambda k: (-counts[k], k))[:12]
    types = [k if k in common else "(other)" for k in types]
    rows = []
    for kind in [*common, "(other)", "all"]:
        chosen = [s for s, k in zip(scored, types) if kind in ("all", k)]
        if chosen:
            rows.append({"question type": kind,
                         "exact_match": 100.0 * float(np.mean([s[0] for s in chosen])),
                         "f1": 100.0 * float(np.mean([s[1] for s in chosen])),
                         "examples": len(chosen)})
    wrong = [i for i, s in enumerate(scored) if not s[0]]
    wrong.sort(key=lambda i: -predictions[i]["score"])
    errors = [{**inputs[i], "gold": golds[i], "predicted": predictions[i]["answer"],
               "score": round(float(predictions[i]["score"]), 4), "f1": round(scored[i][1], 4)}
              for i in wrong[:worst]]
    return {"per_class": rows, "class_key": "question type",
            "columns": ["exact_match", "f1", "examples"], "gold": golds, "errors": errors,
            "error_columns": [*inputs[0], "gold", "predicted", "score", "f1"] if inputs else []}


class ReportError(ValueError):
    """No report for these predictions (a head whose outputs this module cannot read)."""


def _task(head: Any, examples: Mapping[str, Any], predictions: list[dict]) -> str:
    first = predictions[0] if predictions else {}
    if "tags" in first and "tags" in examples:
        return "tagging"
    if "answer" in first and ("answers" in examples or "answer_text" in examples):
        return "qa"
    if "labels" in first and "label" in examples:
        return "multi_label"
    if "label" in first and "label" in examples:
        return "classification"
    raise ReportError(f"head {head.name!r}: no report for its predictions "
                     f"({sorted(first)}) against the data's fields ({sorted(examples)})")


REPORTS = {"classification": _classification, "multi_label": _multi_label,
           "tagging": _tagging, "qa": _qa}


def write_report(model: Any, examples: Mapping[str, Any], predictions: list[dict],
                 directory: str | Path, *, worst: int = 25,
                 metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write an evaluation report of `predictions` against labelled `examples`.

    Args:
        model: the `kerabert.Task` that predicted (its head says how to read them).
        examples: the labelled examples (`kerabert.Examples`: ids come from their
            `id` field or source lines).
        predictions: `model.predict_examples(examples)`.
        directory: the folder to write (created; files in it are replaced).
        worst: how many of the most confident errors to list.
        metrics: the head's metrics (`head.score`) to put at the top.

    Returns:
        A summary: the task, the files written, and the per-class rows.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    head = model.head
    task = _task(head, examples, predictions)
    ids = example_ids(examples)
    shown = [f for f in head.fields if f not in NOT_SHOWN]
    inputs = [{"id": ids[i], **{f: as_text(examples[f][i]) for f in shown}}
              for i in range(len(predictions))]
    found = REPORTS[task](head, examples, predictions, inputs, worst)
    files = {}

    key, columns = found["class_key"], found.get("columns", PRF_COLUMNS)
    per_class = found["per_class"]
    files["per_class_csv"] = write_csv(per_class, [key, *columns], directory / "per_class.csv")
    sections = [f"# Evaluation report: {head.name}\n",
                f"{len(predictions)} examples from `{getattr(examples, 'source', '')}`.\n"]
    if metrics:
        sections += ["## Metrics\n", markdown_table(
            [{"metric": k, "value": v} for k, v in metrics.items() if not isinstance(v, dict)],
            ["metric", "value"]) + "\n"]
    sections += [f"## Per {key}\n", markdown_table(per_class, [key, *columns]) + "\n"]

    if "matrix" in found:
        labels, matrix = found["matrix_labels"], found["matrix"]
        rows = _confusion_rows(matrix, labels)
        table_columns = ["true \\ predicted", *labels]
        files["confusion_csv"] = write_csv(rows, table_columns, directory / "confusion.csv")
        table = markdown_table(rows, table_columns)
        (directory / "confusion.md").write_text(table + "\n", encoding="utf-8")
        files["confusion_md"] = directory / "confusion.md"
        files["confusion_png"] = plots.plot_confusion(
            matrix, labels, directory / "confusion.png",
            title=found.get("matrix_title", f"{head.name}: confusion matrix"))
        sections += ["## Confusion matrix (rows: true, columns: predicted)\n", table + "\n",
                     "![confusion matrix](confusion.png)\n"]
    if task == "qa":
        shown = [r for r in per_class if r[key] != "all"]
        files["by_type_png"] = plots.plot_bars(
            [r[key] for r in shown], {"exact match": [r["exact_match"] for r in shown],
                                      "F1": [r["f1"] for r in shown]},
            directory / "by_type.png", title="QA by question type", ylabel="percent")
        sections.append("![by question type](by_type.png)\n")

    errors = found["errors"]
    files["errors_jsonl"] = write_jsonl(errors, directory / "errors.jsonl")
    sections += [f"## The {len(errors)} most confident errors\n",
                 markdown_table(errors, found["error_columns"]) + "\n" if errors
                 else "None.\n"]
    gold = found["gold"]
    files["predictions_jsonl"] = write_jsonl(
        ({**inputs[i], "gold": gold[i], **predictions[i]} for i in range(len(predictions))),
        directory / "predictions.jsonl")
    (directory / "report.md").write_text("\n".join(sections), encoding="utf-8")
    files["report_md"] = directory / "report.md"
    summary = {"task": task, "examples": len(predictions),
               "files": {k: str(v) for k, v in files.items()},
               "per_class": per_class, **({"metrics": dict(metrics)} if metrics else {})}
    if "matrix" in found:
        summary["confusion"] = {"labels": found["matrix_labels"],
                                "matrix": found["matrix"].tolist()}
    with open(directory / "report.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)
    return summary
