"""CoNLL/JSONL token-tag readers, tag schemes, conversion and repair."""

import json

import pytest

from kerabert.data.conll import (convert_tags, detect_scheme, read_conll, read_tagged,
                                 read_token_jsonl, repair_tags, tag_spans, to_iob2)
from kerabert.data.tables import DataError
from tests.conftest import SHARED_DATA, requires_shared_data


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_conll_docstart_extra_columns_and_sentences(tmp_path):
    path = write(tmp_path, "a.txt",
                 "-DOCSTART- -X- -X- O\n\n"
                 "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nU.S. NNP B-NP B-LOC\n\n\n"
                 "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n")
    examples = read_conll(path)
    assert examples["text"] == [["EU", "rejects", "U.S."], ["Peter", "Blackburn"]]
    assert examples["tags"] == [["B-ORG", "O", "B-LOC"], ["B-PER", "I-PER"]]
    assert examples.lines == [3, 8]
    chunks = read_conll(path, tag_column=2, scheme="IOB2")
    assert chunks["tags"][0] == ["B-NP", "B-VP", "B-NP"]


def test_read_conll_tab_separator_keeps_spaces_in_tokens(tmp_path):
    path = write(tmp_path, "a.tsv", "New York\tB-LOC\nis\tO\n")
    examples = read_conll(path, separator="\t")
    assert examples["text"] == [["New York", "is"]]


def test_wrong_number_of_columns_names_file_and_line(tmp_path):
    path = write(tmp_path, "bad.txt", "EU B-ORG\nrejects\n\nPeter B-PER\n")
    with pytest.raises(DataError, match=r"bad\.txt:2: 1 columns"):
        read_conll(path)
    examples = read_conll(path, skip_bad=True)
    assert examples["text"] == [["Peter"]]
    assert examples.skipped == 1


def test_tag_outside_the_scheme_is_an_error(tmp_path):
    path = write(tmp_path, "bad.txt", "EU B-ORG\n\nPeter E-PER\nx O\n")
    with pytest.raises(DataError, match=r"bad\.txt:3: tag 'E-PER' is not a IOB2 tag"):
        read_conll(path, scheme="IOB2")
    path = write(tmp_path, "junk.txt", "EU ORG\n")
    with pytest.raises(DataError, match=r"junk\.txt:1: tag 'ORG'"):
        read_conll(path)


def test_unknown_label_is_an_error_or_skipped(tmp_path):
    path = write(tmp_path, "a.txt", "EU B-ORG\n\nParis B-LOC\n")
    with pytest.raises(DataError, match=r"a\.txt:1: tag 'B-ORG' is not one of"):
        read_conll(path, labels=["O", "B-LOC", "I-LOC"])
    kept = read_conll(path, labels=["O", "B-LOC", "I-LOC"], skip_bad=True)
    assert kept["text"] == [["Paris"]]


def test_jsonl_reader_and_its_errors(tmp_path):
    rows = [{"tokens": ["John", "runs"], "tags": ["B-PER", "O"]},
            {"tokens": [], "tags": []},
            {"tokens": ["a", "b"], "tags": ["O"]},
            {"tokens": ["Paris"], "ner_tags": [1]}]
    path = write(tmp_path, "a.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError, match=r"a\.jsonl:2: empty sentence"):
        read_token_jsonl(path)
    examples = read_tagged(path, skip_bad=True, tag_names=["O", "B-LOC"])
    assert examples["text"] == [["John", "runs"], ["Paris"]]
    assert examples["tags"] == [["B-PER", "O"], ["B-LOC"]]
    assert examples.skipped == 2


def test_schemes_detect_convert_and_repair():
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "O"]
    iob2 = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "O"]
    bioes = ["B-PER", "E-PER", "O", "S-LOC", "S-LOC", "O"]
    assert detect_scheme([iob1]) == "IOB1"
    assert detect_scheme([iob2]) == "IOB2"
    assert detect_scheme([bioes]) == "BIOES"
    assert convert_tags(iob1, "IOB1", "IOB2") == iob2
    assert convert_tags(iob2, "IOB2", "BIOES") == bioes
    assert convert_tags(bioes, "BIOES", "IOB2") == iob2
    assert convert_tags(iob2, "IOB2", "IOB1") == iob1
    # I- after O, or after another type, starts an entity (as conlleval reads it).
    assert repair_tags(["O", "I-PER", "I-LOC", "I-LOC"]) == ["O", "B-PER", "B-LOC", "I-LOC"]
    assert repair_tags(["I-PER", "B-PER"], "BIOES") == ["S-PER", "S-PER"]
    assert tag_spans(["O", "I-PER", "I-LOC", "I-LOC", "B-LOC"]) == [
        ("PER", 1, 2), ("LOC", 2, 4), ("LOC", 4, 5)]
    assert tag_spans(["B-PER", "E-PER", "S-LOC"], "BIOES") == [("PER", 0, 2), ("LOC", 2, 3)]
    with pytest.raises(ValueError, match="neither O nor"):
        to_iob2(["PER"])


def test_file_in_iob1_is_converted_to_the_model_scheme(tmp_path):
    path = write(tmp_path, "a.txt", "Peter I-PER\nBlackburn I-PER\nin O\nParis I-LOC\n")
    assert read_conll(path)["tags"] == [["B-PER", "I-PER", "O", "B-LOC"]]
    assert read_conll(path, target_scheme="BIOES")["tags"] == [["B-PER", "E-PER", "O", "S-LOC"]]


@requires_shared_data
def test_real_files_read_with_published_counts():
    conll = read_conll(SHARED_DATA / "ner/conll2003/dev.txt")
    assert len(conll["text"]) == 3250
    assert sum(len(t) for t in conll["text"]) == 51362
    assert sum(len(tag_spans(t)) for t in conll["tags"]) == 5942
    wnut = read_conll(SHARED_DATA / "ner/wnut17/train.txt")
    assert len(wnut["text"]) == 3394
    assert sum(len(tag_spans(t)) for t in wnut["tags"]) == 1975


def test_a_tag_with_a_prefix_of_no_scheme_names_file_and_line(tmp_path):
    path = tmp_path / "x.conll"
    path.write_text("EU B-ORG\nrejects O\n\nGerman X-MISC\ncall O\n")
    with pytest.raises(DataError, match=r"x.conll:4: tag 'X-MISC' has prefix 'X'"):
        read_conll(path)
    examples = read_conll(path, skip_bad=True)
    assert examples["tags"] == [["B-ORG", "O"]] and examples.skipped == 1


def test_conll_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.conll"
    path.write_bytes(b"\xef\xbb\xbfEU B-ORG\nrejects O\n")
    assert read_conll(path)["text"] == [["EU", "rejects"]]
