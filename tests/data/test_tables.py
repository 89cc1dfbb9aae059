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


# -- issue 15: inputs that crashed or silently did the wrong thing ------------------------------
@pytest.mark.parametrize("name, content", [
    ("bom.tsv", "sentence\tlabel\nfine film\tpos\n"),
    ("bom.csv", "sentence,label\nfine film,pos\n"),
    ("bom.jsonl", '{"sentence": "fine film", "label": "pos"}\n'),
])
def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + content.encode())
    examples = read_table(path, {"text": ("text", "sentence"), "label": "label"})
    assert examples["text"] == ["fine film"] and examples["label"] == ["pos"]
    assert examples.skipped == 0


@pytest.mark.parametrize("suffix, separator", [(".tsv", "\t"), (".csv", ",")])
def test_a_field_over_the_csv_limit_names_file_and_line_and_can_be_skipped(
        tmp_path, suffix, separator):
    path = tmp_path / f"big{suffix}"
    path.write_text(f"text{separator}label\nfine{separator}pos\n"
                    f"{'x' * 140_000}{separator}neg\ngood{separator}pos\n")
    with pytest.raises(DataError, match=rf"big\{suffix}:3: a field is longer than 131,072"):
        read_table(path, {"text": "text", "label": "label"})
    examples = read_table(path, {"text": "text", "label": "label"}, skip_bad=True)
    assert examples["text"] == ["fine", "good"] and examples.skipped == 1
    assert examples.lines == [2, 4]


def test_non_string_json_values_are_bad_rows_not_text(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text('{"text": "fine", "label": 1}\n{"text": ["a", "b"], "label": "x"}\n'
                    '{"text": {"k": 1}, "label": "x"}\n{"text": true, "label": "x"}\n')
    with pytest.raises(DataError, match=r"odd.jsonl:2: column 'text' is a JSON list"):
        read_table(path, {"text": "text", "label": "label"})
    examples = read_table(path, {"text": "text", "label": "label"}, skip_bad=True)
    assert examples["text"] == ["fine"] and examples["label"] == ["1"]  # numbers: labels
    assert examples.skipped == 3


@pytest.mark.parametrize("column", ["sentiment", "target"])
def test_sentiment_and_target_are_label_columns(tmp_path, column):
    from kerabert.heads.classification import SentimentHead

    path = tmp_path / "data.tsv"
    path.write_text(f"sentence\t{column}\nfine film\tpos\ndull film\tneg\n")
    examples = SentimentHead().read(path)
    assert examples["label"] == ["pos", "neg"]


def test_training_data_without_labels_lists_the_columns_and_the_option(tmp_path):
    from kerabert.heads.classification import SentimentHead

    path = tmp_path / "nolabel.tsv"
    path.write_text("sentence\tpolarity\nfine film\tpos\n")
    head = SentimentHead()
    examples = head.read(path)
    with pytest.raises(DataError, match=r"nolabel.tsv:1: no label column to train on "
                                        r"\(the file's columns: 'sentence', 'polarity'; "
                                        r"name it with --label-column"):
        head.adapt(examples)
