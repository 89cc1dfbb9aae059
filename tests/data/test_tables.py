"""CSV/TSV/JSONL/lines readers and their errors."""

from __future__ import annotations

import pytest

from kerabert.data.tables import DataError, read_table
from tests.conftest import SHARED_DATA, requires_shared_data

COLUMNS = {"text": ("text", "sentence"), "label": "label"}


def _write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_tsv_with_alias_column_and_literal_quotes(tmp_path):
    path = _write(tmp_path, "d.tsv", 'sentence\tlabel\nit "works" \t1\nno\t0\n')
    examples = read_table(path, COLUMNS)
    assert examples["text"] == ['it "works" ', "no"]
    assert examples["label"] == ["1", "0"]
    assert examples.lines == [2, 3]


def test_csv_quoted_multiline_field_keeps_line_numbers(tmp_path):
    path = _write(tmp_path, "d.csv", 'text,label\n"two\nlines",a\n,b\n')
    with pytest.raises(DataError, match=r"d.csv:4: empty 'text'"):
        read_table(path, COLUMNS)


def test_jsonl_and_multi_label_lists(tmp_path):
    path = _write(tmp_path, "d.jsonl", '{"text": "a", "label": ["x", "y"]}\n\n{"text": "b", "label": "x|z"}\n')
    examples = read_table(path, COLUMNS, list_fields=("label",))
    assert examples["label"] == [["x", "y"], ["x", "z"]]


def test_lines_format_with_pattern(tmp_path):
    path = _write(tmp_path, "trec.txt", "DESC:manner How did it go ?\nHUM:ind Who was he ?\n")
    examples = read_table(path, {"text": "text", "label": "label"}, format="lines",
                          line_pattern=r"(?P<label>\w+):\S+ (?P<text>.*)")
    assert examples["label"] == ["DESC", "HUM"]
    assert examples["text"][1] == "Who was he ?"


def test_missing_header_column_lists_columns(tmp_path):
    path = _write(tmp_path, "d.tsv", "body\tlabel\nx\t1\n")
    with pytest.raises(DataError, match=r"d.tsv:1: header has no column 'text' or 'sentence'"):
        read_table(path, COLUMNS)


def test_wrong_number_of_fields_names_the_line(tmp_path):
    path = _write(tmp_path, "d.tsv", "text\tlabel\nok\t1\nbad\n")
    with pytest.raises(DataError, match=r"d.tsv:3: 1 fields, the header has 2"):
        read_table(path, COLUMNS)


def test_unknown_label_names_the_line(tmp_path):
    path = _write(tmp_path, "d.tsv", "text\tlabel\nok\tpos\nhm\tmeh\n")
    with pytest.raises(DataError, match=r"d.tsv:3: unknown label 'meh'"):
        read_table(path, COLUMNS, allowed={"label": {"pos", "neg"}})


def test_invalid_utf8_names_the_line(tmp_path):
    path = _write(tmp_path, "d.tsv", b"text\tlabel\nok\t1\nbad \xff\xfe\t0\n", mode="wb")
    with pytest.raises(DataError, match=r"d.tsv:3: column 'text' is not valid UTF-8"):
        read_table(path, COLUMNS)


def test_invalid_json_names_the_line(tmp_path):
    path = _write(tmp_path, "d.jsonl", '{"text": "a", "label": "x"}\n{"text": \n')
    with pytest.raises(DataError, match=r"d.jsonl:2: invalid JSON"):
        read_table(path, COLUMNS)


def test_skip_bad_counts_and_keeps_the_rest(tmp_path, capsys):
    path = _write(tmp_path, "d.tsv", "text\tlabel\nok\t1\n\t0\nfine\t0\nlost\n")
    examples = read_table(path, COLUMNS, skip_bad=True)
    assert examples["text"] == ["ok", "fine"]
    assert examples.skipped == 2
    assert "skipped 2 bad row(s)" in capsys.readouterr().err


def test_optional_column_absent_everywhere_is_dropped(tmp_path):
    path = _write(tmp_path, "d.jsonl", '{"text": "a"}\n{"text": "b"}\n')
    examples = read_table(path, COLUMNS, required=["text"])
    assert list(examples) == ["text"]


def test_missing_file():
    with pytest.raises(DataError, match="no such file"):
        read_table("/nonexistent/x.tsv", COLUMNS)


@requires_shared_data
def test_reads_real_sst2():
    examples = read_table(SHARED_DATA / "sst2" / "dev.tsv", COLUMNS)
    assert len(examples) == 2000
    assert set(examples["label"]) == {"0", "1"}
