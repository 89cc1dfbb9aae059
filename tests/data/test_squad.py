"""SQuAD readers: v1.1 / v2.0 JSON, JSON lines, and errors naming the file and question."""

import json

import pytest

from kerabert.data.squad import read_squad
from kerabert.data.tables import DataError
from tests.conftest import SHARED_DATA, requires_shared_data

CONTEXT = "John Smith moved to Paris in 1990. He liked Paris."


def squad_json(qas, version="1.1", context=CONTEXT):
    return {"version": version,
            "data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    return path


def test_v1_keeps_every_gold_answer_and_trains_on_the_first(tmp_path):
    path = write(tmp_path, "dev.json", squad_json([
        {"id": "q1", "question": "Who moved?", "answers": [
            {"text": "John Smith", "answer_start": 0}, {"text": "Smith", "answer_start": 5}]},
        {"id": "q2", "question": "Where?", "answers": [{"text": "Paris", "answer_start": 44}]},
    ]))
    examples = read_squad(path)
    assert examples["id"] == ["q1", "q2"]
    assert examples["answers"] == [["John Smith", "Smith"], ["Paris"]]
    assert examples["answer_start"] == [0, 44]
    assert examples["answer_text"] == ["John Smith", "Paris"]
    assert examples["context"] == [CONTEXT, CONTEXT]
    assert examples.skipped == 0


def test_v2_unanswerable_questions(tmp_path):
    path = write(tmp_path, "v2.json", squad_json([
        {"id": "a", "question": "Who?", "answers": [{"text": "John", "answer_start": 0}],
         "is_impossible": False},
        {"id": "b", "question": "When did he leave?", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": "1990", "answer_start": 29}]},
        {"id": "c", "question": "Why?", "answers": []},
    ], version="v2.0"))
    examples = read_squad(path)
    assert examples["answer_start"] == [0, -1, -1]
    assert examples["answer_text"] == ["John", "", ""]
    assert examples["answers"] == [["John"], [], []]
    with pytest.raises(DataError, match=r"v2.json: question 'b': no answer"):
        read_squad(path, allow_no_answer=False)


def test_jsonl_both_answer_layouts_and_a_json_suffix(tmp_path):
    rows = [
        {"id": "x", "question": "Who?", "context": CONTEXT,
         "answers": [{"text": "John Smith", "answer_start": 0}]},
        {"id": "y", "question": "Where?", "context": CONTEXT,
         "answers": {"text": ["Paris", "Paris"], "answer_start": [20, 44]}},
    ]
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    for name in ("qa.jsonl", "qa.json"):
        examples = read_squad(write(tmp_path, name, text))
        assert examples["answers"] == [["John Smith"], ["Paris", "Paris"]]
        assert examples["answer_start"] == [0, 20]
        assert examples.lines == [1, 2]


def test_malformed_json_names_the_file_and_position(tmp_path):
    path = write(tmp_path, "broken.json", '{"version": "1.1", "data": [\n  {"title": }]}')
    with pytest.raises(DataError, match=r"broken.json:2:\d+: invalid JSON"):
        read_squad(path)
    path = write(tmp_path, "lines.jsonl", '{"question": "a", "context": "b", "answers": []}\n{oops\n')
    with pytest.raises(DataError, match=r"lines.jsonl:2: invalid JSON"):
        read_squad(path)


def test_answer_start_that_misses_its_text_names_the_question(tmp_path):
    path = write(tmp_path, "bad.json", squad_json([
        {"id": "good", "question": "Who?", "answers": [{"text": "John", "answer_start": 0}]},
        {"id": "off-by-one", "question": "Where?",
         "answers": [{"text": "Paris", "answer_start": 21}]},
    ]))
    with pytest.raises(DataError, match=r"bad.json: question 'off-by-one': answer 0: "
                                         r"answer_start 21 does not point at its text 'Paris' "
                                         r"\(the context has 'aris ' there\)"):
        read_squad(path)
    examples = read_squad(path, skip_bad=True)
    assert examples["id"] == ["good"]
    assert examples.skipped == 1


def test_skip_bad_counts_every_kind_of_bad_question(tmp_path, capsys):
    rows = [
        '{"id": "ok", "question": "Who?", "context": "John did.", '
        '"answers": [{"text": "John", "answer_start": 0}]}',
        '{"id": "noq", "context": "John did.", "answers": []}',
        '{"id": "empty", "question": " ", "context": "John did.", "answers": []}',
        '{"id": "neg", "question": "Who?", "context": "John did.", '
        '"answers": [{"text": "John", "answer_start": -3}]}',
        '{"id": "str", "question": "Who?", "context": "John did.", '
        '"answers": [{"text": "John", "answer_start": "0"}]}',
        "[1, 2]",
        "{not json",
    ]
    path = write(tmp_path, "mixed.jsonl", "\n".join(rows))
    with pytest.raises(DataError, match=r"mixed.jsonl:2: question 'noq': missing 'question'"):
        read_squad(path)
    examples = read_squad(path, skip_bad=True)
    assert examples["id"] == ["ok"]
    assert examples.skipped == 6
    assert "skipped 6 bad question(s)" in capsys.readouterr().err


def test_not_squad_and_nothing_usable(tmp_path):
    with pytest.raises(DataError, match=r"x.json: not SQuAD JSON"):
        read_squad(write(tmp_path, "x.json", {"rows": []}))
    path = write(tmp_path, "all-bad.json", squad_json([
        {"id": "q", "question": "Who?", "answers": [{"text": "Nobody", "answer_start": 0}]}]))
    with pytest.raises(DataError, match=r"all-bad.json: no usable questions"):
        read_squad(path, skip_bad=True)
    with pytest.raises(DataError, match="no such file"):
        read_squad(tmp_path / "missing.json")


def test_head_read_rejects_options_it_does_not_have(tmp_path):
    from kerabert.heads.span import QuestionAnsweringHead

    path = write(tmp_path, "q.json", squad_json([
        {"id": "q", "question": "Who?", "answers": [{"text": "John", "answer_start": 0}]}]))
    head = QuestionAnsweringHead()
    assert head.read(path, format="squad")["id"] == ["q"]
    with pytest.raises(DataError, match="no option"):
        head.read(path, text_column="question")


@requires_shared_data
def test_real_squad_v1_files():
    train = read_squad(SHARED_DATA / "qa" / "squad_v1.1" / "train.json")
    dev = read_squad(SHARED_DATA / "qa" / "squad_v1.1" / "dev.json")
    assert (len(train), len(dev)) == (6407, 1386)  # SOURCES.md
    assert all(answers for answers in dev["answers"])
    for context, start, text in zip(dev["context"], dev["answer_start"], dev["answer_text"]):
        assert context[start : start + len(text)] == text
