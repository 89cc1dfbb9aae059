"""The in-graph byte-level BPE tokenizer (RoBERTa) gives the ids and offsets of the
checkpoint's own `tokenizer.json` (Hugging Face `tokenizers`), on real sentences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from kerabert.byte_pair import BytePairTokenizer
from kerabert.validation import CheckpointError
from tests.conftest import requires_shared_data
from tests.test_sentencepiece import COMPATIBILITY, EXTRA, real_sentences

TOKENIZER_JSON = Path(__file__).parent / "fixtures" / "families" / "roberta" / "tokenizer.json"
MORE = ["5 keras 2000 60,000", "it's a 'quoted' film  ", "i'll say you're \"right\""]


def tokenizer():
    return BytePairTokenizer.from_tokenizer_json(TOKENIZER_JSON)


def hugging_face(prefix_space=False):
    tokenizers = pytest.importorskip("tokenizers")
    reference = tokenizers.Tokenizer.from_file(str(TOKENIZER_JSON))
    if prefix_space:
        reference.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=True)
    return reference


def characters(data, offset):
    """A byte offset (on a character boundary: checked) as a character offset."""
    assert offset == len(data) or data[offset] & 0xC0 != 0x80, "inside a character"
    return len(data[:offset].decode("utf-8"))


def mismatches(sentences):
    ids, starts, ends = (t.to_list() for t in tokenizer().tokenize_with_offsets(
        tf.constant(sentences)))
    reference = hugging_face()
    bad_ids, bad_offsets = [], []
    for text, row, start, end in zip(sentences, ids, starts, ends):
        encoding = reference.encode(text, add_special_tokens=False)
        if encoding.ids != row:
            bad_ids.append(text)
            continue
        data = text.encode("utf-8")
        spans = [(characters(data, s), characters(data, e)) for s, e in zip(start, end)]
        if spans != [tuple(o) for o in encoding.offsets]:
            bad_offsets.append((text, spans, encoding.offsets))
    return bad_ids, bad_offsets


def test_ids_and_offsets_match_tokenizers_on_fixture_sentences():
    sentences = [str(s).replace(" ||| ", " ") for s in np.load(
        TOKENIZER_JSON.parent / "reference.npz")["sentences"]] + EXTRA + COMPATIBILITY + MORE
    assert mismatches(sentences) == ([], [])


@requires_shared_data
def test_ids_and_offsets_match_tokenizers_on_real_sentences():
    sentences = real_sentences()
    assert len(sentences) > 5000
    assert mismatches(sentences) == ([], [])


def test_words_are_tokenized_with_a_leading_space_as_transformers_does():
    """Pre-split words (NER) get the leading space of a word inside a sentence, as
    transformers' `is_split_into_words=True` with `add_prefix_space=True`."""
    words = [["Peter", "Blackburn", "met", "Тимур"], ["EU"]]
    ours = tokenizer()(tf.ragged.constant(words))
    reference = hugging_face(prefix_space=True)
    for row, expected in zip(ours.to_list(), words):
        flat = [i for word in row for i in word]
        assert flat == reference.encode(expected, is_pretokenized=True,
                                        add_special_tokens=False).ids
    starts = tokenizer().tokenize_with_offsets(tf.ragged.constant(words))[1]
    assert [w[0] for w in starts.to_list()[0]] == [0, 0, 0, 0]  # within each word


def test_pairs_are_packed_as_roberta_does():
    ours = tokenizer()
    packed = ours.pack([ours(tf.constant(["a fine film"])), ours(tf.constant(["dull"]))], 16)
    encoding = hugging_face().encode("a fine film", "dull")
    n = len(encoding.ids)
    assert packed["token_ids"].numpy()[0, :n].tolist() == encoding.ids
    assert packed["segment_ids"].numpy()[0].tolist() == [0] * 16
    assert packed["padding_mask"].numpy()[0].tolist() == [1] * n + [0] * (16 - n)


def test_saved_assets_rebuild_the_same_tokenizer(tmp_path):
    ours = tokenizer()
    ours.save_assets(str(tmp_path))
    rebuilt = BytePairTokenizer.from_config(ours.get_config())
    rebuilt.load_assets(str(tmp_path))
    text = tf.constant(EXTRA + MORE)
    assert rebuilt(text).to_list() == ours(text).to_list()
    assert not rebuilt.continuation_flags()[rebuilt.token_to_id("\u0120a")]


def test_unsupported_tokenizer_json_is_refused_naming_the_field(tmp_path):
    import json

    data = json.loads(TOKENIZER_JSON.read_text(encoding="utf-8"))
    data["pre_tokenizer"] = {"type": "Whitespace"}
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CheckpointError, match="pre_tokenizer 'Whitespace' is not supported"):
        BytePairTokenizer.from_tokenizer_json(path)
