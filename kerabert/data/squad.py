"""SQuAD readers: the official JSON (v1.1 and v2.0) and one question per JSON line.

Both give `Examples` with the columns the `qa` head uses:

- `id`, `question`, `context`: strings;
- `answer_start`, `answer_text`: the first gold answer (character offset into the
  context, and its text), the training target; `-1` and `""` for an unanswerable
  question (v2.0 `is_impossible`, or an empty answer list);
- `answers`: every gold answer text, kept for scoring (SQuAD dev questions have
  about three).

A bad item (malformed JSON, a missing or empty field, an `answer_start` that does not
point at its answer text in the context) raises `DataError` naming the file and the
question id (and the line, for JSON lines), unless `skip_bad=True`, which skips the
question and counts it.

JSON lines take either answer layout:
`{"id", "question", "context", "answers": [{"text", "answer_start"}, ...]}` or the
Hugging Face datasets one, `"answers": {"text": [...], "answer_start": [...]}`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kerabert.data.tables import DataError, Examples

FORMATS = ("squad", "jsonl")
COLUMNS = ("id", "question", "context", "answer_start", "answer_text", "answers")


def guess_format(path):
    """`jsonl` for `.jsonl` files, else `squad` (a JSON file that holds JSON lines is
    recognized when it is read)."""
    return "jsonl" if Path(path).suffix.lower() == ".jsonl" else "squad"


def read_squad(path, *, format=None, skip_bad=False, allow_no_answer=True):
    """Read SQuAD JSON or JSON lines into question-answering columns.

    Args:
        path: the file.
        format: `"squad"` (the official nested JSON) or `"jsonl"`; guessed from the
            file name (and content) when omitted.
        skip_bad: skip and count bad questions instead of raising `DataError`.
        allow_no_answer: accept unanswerable questions (v2.0); when False they are
            bad items.

    Returns:
        `Examples` with the columns `id, question, context, answer_start,
        answer_text, answers` (see the module doc).

    Example:
    ```python
    examples = read_squad("dev-v1.1.json")
    examples["question"][0], examples["answers"][0]
    ```
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    format = {"json": "squad"}.get(format, format) or guess_format(path)
    if format not in FORMATS:
        raise DataError(f"{path}: unknown SQuAD format {format!r}; use one of {FORMATS}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not valid UTF-8 (byte {e.start})") from None
    builder = _Builder(path, skip_bad, allow_no_answer)
    if format == "squad":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as e:
            if e.msg == "Extra data" and text.lstrip().startswith("{"):
                format = "jsonl"  # one object per line in a .json file
            else:
                raise DataError(f"{path}:{e.lineno}:{e.colno}: invalid JSON ({e.msg})") from None
        else:
            _read_document(document, builder)
    if format == "jsonl":
        _read_lines(text, builder)
    return builder.finish()


class _Builder:
    """Collects questions into columns, and bad ones into errors or a count."""

    def __init__(self, path, skip_bad, allow_no_answer):
        self.path = path
        self.skip_bad = skip_bad
        self.allow_no_answer = allow_no_answer
        self.columns = {name: [] for name in COLUMNS}
        self.lines = []
        self.skipped = 0

    def bad(self, where, message):
        if not self.skip_bad:
            raise DataError(f"{self.path}{where}: {message}")
        self.skipped += 1

    def add(self, record, where, line=None):
        """Check one question record (`id, question, context, answers, is_impossible`)."""
        qid = record.get("id")
        where = f"{where}: question {qid!r}" if qid is not None else where
        problem = _problem(record, self.allow_no_answer)
        if problem:
            self.bad(where, problem)
            return
        answers = record["answers"]
        first = answers[0] if answers else {"answer_start": -1, "text": ""}
        values = {
            "id": str(qid) if qid is not None else str(len(self.columns["id"])),
            "question": record["question"],
            "context": record["context"],
            "answer_start": int(first["answer_start"]),
            "answer_text": first["text"],
            "answers": [a["text"] for a in answers],
        }
        for name in COLUMNS:
            self.columns[name].append(values[name])
        self.lines.append(line)

    def finish(self):
        if self.skipped:
            print(f"{self.path}: skipped {self.skipped} bad question(s)", file=sys.stderr)
        if not self.columns["id"]:
            raise DataError(f"{self.path}: no usable questions")
        lines = self.lines if any(line is not None for line in self.lines) else None
        return Examples(self.columns, source=self.path, skipped=self.skipped, lines=lines)


def _problem(record, allow_no_answer):
    """What is wrong with a question record, or None."""
    for field in ("question", "context"):
        value = record.get(field)
        if not isinstance(value, str):
            return f"missing {field!r}" if value is None else f"{field!r} is not a string"
        if not value.strip():
            return f"empty {field!r}"
    answers = record.get("answers")
    if not isinstance(answers, list):
        return "'answers' must be a list of {'text', 'answer_start'}"
    if record.get("is_impossible") and answers:
        return "is_impossible is true but the question has answers"
    context = record["context"]
    for number, answer in enumerate(answers):
        if not isinstance(answer, dict) or "text" not in answer or "answer_start" not in answer:
            return f"answer {number} must have 'text' and 'answer_start'"
        text, start = answer["text"], answer["answer_start"]
        if not isinstance(text, str) or not text.strip():
            return f"answer {number} has an empty text"
        if isinstance(start, bool) or not isinstance(start, int):
            return f"answer {number}: answer_start {start!r} is not an integer"
        found = context[start : start + len(text)] if start >= 0 else None
        if found != text:
            return (
                f"answer {number}: answer_start {start} does not point at its text "
                f"{text!r} (the context has {found!r} there)"
            )
    if not answers and not allow_no_answer:
        return "no answer (unanswerable questions are not allowed here)"
    return None


def _read_document(document, builder):
    path = builder.path
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataError(f"{path}: not SQuAD JSON (expected an object with a 'data' list)")
    for article_number, article in enumerate(document["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            builder.bad(f": article {article_number}", "no 'paragraphs' list")
            continue
        for paragraph_number, paragraph in enumerate(paragraphs):
            where = f": article {article_number} paragraph {paragraph_number}"
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            if not isinstance(qas, list):
                builder.bad(where, "no 'qas' list")
                continue
            for qa in qas:
                if not isinstance(qa, dict):
                    builder.bad(where, "a question must be an object")
                    continue
                record = dict(qa, context=paragraph.get("context"))
                builder.add(record, "")


def _read_lines(text, builder):
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            builder.bad(f":{number}", f"invalid JSON ({e.msg})")
            continue
        if not isinstance(row, dict):
            builder.bad(f":{number}", "a JSON line must be an object")
            continue
        answers = row.get("answers", [])
        if isinstance(answers, dict):  # Hugging Face datasets: columns of answers
            texts = answers.get("text") or []
            starts = answers.get("answer_start") or []
            if len(texts) != len(starts):
                builder.bad(f":{number}", "answers.text and answers.answer_start differ in length")
                continue
            answers = [{"text": t, "answer_start": s} for t, s in zip(texts, starts)]
        builder.add(dict(row, answers=answers), f":{number}", line=number)
