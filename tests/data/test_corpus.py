"""Plain-text corpora: documents, packing, held-out split, next-sentence pairs, bad lines."""

from __future__ import annotations

import numpy as np
import pytest

from kerabert.data.corpus import IS_NEXT, IS_RANDOM, Corpus, corpus_files
from kerabert.data.tables import DataError


def _write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _rows(dataset):
    return [{k: v.numpy() for k, v in row.items()} for row in dataset]


def test_blank_lines_separate_documents(tmp_path):
    _write(tmp_path, "a.txt", "\n\nthe film was good .\nit was fun\n\n\nparis is a city\n")
    _write(tmp_path, "b.txt", "john and smith\n\n\n")
    rows = _rows(Corpus(tmp_path).lines())
    assert [r["text"].decode() for r in rows] == [
        "the film was good .", "it was fun", "paris is a city", "john and smith"]
    documents = [r["document"] for r in rows]
    assert documents[0] == documents[1] and len(set(documents)) == 3
    assert [bool(r["first"]) for r in rows] == [True, False, True, True]
    assert Corpus(tmp_path).statistics() == {"files": 2, "documents": 3, "lines": 4}


def test_one_document_per_file(tmp_path):
    _write(tmp_path, "a.txt", "the film\n\nwas good\n")
    _write(tmp_path / "sub", "b.txt", "paris\n")
    _write(tmp_path, ".hidden", "never read\n")
    corpus = Corpus(tmp_path, documents="file")
    assert [p.rsplit("/", 1)[-1] for p in corpus.files] == ["a.txt", "b.txt"]
    rows = _rows(corpus.lines())
    assert len({r["document"] for r in rows}) == 2
    assert [bool(r["first"]) for r in rows] == [True, False, True]


def test_packed_rows_hold_the_whole_text_in_order(tmp_path, tiny_tokenizer):
    _write(tmp_path, "a.txt", "the film was good .\nit was fun\n\nparis is a city\n")
    _write(tmp_path, "b.txt", "john smith and the team played a game on monday\n")
    corpus = Corpus(tmp_path)
    length = 8
    rows = np.stack([r["token_ids"] for r in _rows(corpus.packed(tiny_tokenizer, length))])
    assert rows.shape[1] == length
    assert (rows[:, 0] == tiny_tokenizer.cls_id).all()
    # Each row: [CLS] body [SEP] then padding (only in the last row).
    body = np.concatenate([row[row != tiny_tokenizer.pad_id][1:-1] for row in rows])
    sep = tiny_tokenizer.sep_id
    expected = []
    for text in ("the film was good .", "it was fun", None, "paris is a city", None,
                 "john smith and the team played a game on monday"):
        if text is None:
            expected.append(sep)  # between documents
        else:
            expected.extend(tiny_tokenizer([text]).numpy()[0].tolist())
    assert body.tolist() == [sep] + expected  # the stream starts a document too
    # Every row but the last is full: no padding wasted.
    assert (rows[:-1] != tiny_tokenizer.pad_id).all()


def test_held_out_documents_are_disjoint_from_training(tmp_path):
    text = "\n\n".join(f"document {i} line one\ndocument {i} line two" for i in range(200))
    _write(tmp_path, "a.txt", text)
    corpus = Corpus(tmp_path, holdout=0.1)
    train = {r["document"] for r in _rows(corpus.lines("train"))}
    held = {r["document"] for r in _rows(corpus.lines("holdout"))}
    assert not train & held
    assert len(train | held) == 200
    assert 5 <= len(held) <= 40
    with pytest.raises(ValueError, match="no held-out part"):
        Corpus(tmp_path).lines("holdout")


def test_next_sentence_pairs(tmp_path):
    documents = []
    for d in range(60):
        documents.append(" ".join(f"doc{d} sentence{s} ends here." for s in range(5)))
    _write(tmp_path, "a.txt", "\n\n".join(documents))
    pairs = _rows(Corpus(tmp_path).sentence_pairs(seed=3))
    assert len(pairs) == 60 * 4  # consecutive sentences of the same document only
    labels = np.array([p["next_sentence"] for p in pairs])
    assert 0.4 < np.mean(labels == IS_RANDOM) < 0.6
    for pair in pairs:
        first, second = pair["text"].decode(), pair["text_pair"].decode()
        doc, sentence = first.split()[:2]
        actual_next = second.startswith(f"{doc} sentence{int(sentence[8:]) + 1} ")
        assert (pair["next_sentence"] == IS_NEXT) == actual_next, (first, second)


def test_invalid_utf8_names_file_and_line(tmp_path):
    _write(tmp_path, "good.txt", "fine text\n")
    (tmp_path / "bad.txt").write_bytes(b"fine\n\nbroken \xff byte\n")
    with pytest.raises(DataError, match=r"bad\.txt:3: invalid UTF-8"):
        Corpus(tmp_path).statistics()
    stats = Corpus(tmp_path, skip_bad=True).statistics()
    assert stats["bad_lines"] == 1 and stats["lines"] == 2


def test_missing_or_empty_corpus(tmp_path):
    with pytest.raises(DataError, match="no such corpus"):
        corpus_files(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no files"):
        Corpus(tmp_path / "empty")
    with pytest.raises(ValueError, match="documents"):
        Corpus(tmp_path, documents="paragraph")
