"""The in-graph SentencePiece tokenizer gives the ids and offsets of the checkpoint's own
`tokenizer.json` (Hugging Face `tokenizers`), on real SST-2 and CoNLL-2003 sentences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from kerabert.sentencepiece import SentencePieceTokenizer, model_proto
from kerabert.validation import CheckpointError
from tests.conftest import SHARED_DATA, requires_shared_data

FIXTURES = Path(__file__).parent / "fixtures" / "families"
FAMILIES = ("xlm_roberta", "albert", "deberta_v3")
EXTRA = ["Café owners in Zürich said the naïve plan failed.",
         "Peter Blackburn met Тимур in 東京 on Friday.", "  double  spaces\tand a tab ",
         "``quoted'' ```odd\'\'\' ÀÉÎ", "", "x"]
# Compatibility characters that normalize to several letters (the ligature "ﬁ" -> "fi"):
# pieces inside one original character get different (both valid) offsets from
# SentencePiece and `tokenizers`, so only their ids are compared.
COMPATIBILITY = ["ﬁne ① ½ ﬀ"]


def tokenizer(name):
    return SentencePieceTokenizer.from_tokenizer_json(FIXTURES / name / "tokenizer.json")


def hugging_face(name):
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.Tokenizer.from_file(str(FIXTURES / name / "tokenizer.json"))


def real_sentences():
    with open(SHARED_DATA / "sst2" / "dev.tsv", encoding="utf-8") as f:
        lines = [line.split("\t")[0] for line in f.read().splitlines()[1:]]
    with open(SHARED_DATA / "ner" / "conll2003" / "dev.txt", encoding="utf-8") as f:
        blocks = f.read().split("\n\n")
    return lines + [" ".join(row.split()[0] for row in block.splitlines() if row.strip())
                    for block in blocks]


def mismatches(name, sentences):
    """Sentences whose ids differ from `tokenizers`', and those whose offsets do."""
    ours = tokenizer(name)
    ids, starts, ends = (t.to_list() for t in ours.tokenize_with_offsets(
        tf.constant(sentences)))
    reference = hugging_face(name)
    bad_ids, bad_offsets = [], []
    for text, row, start, end in zip(sentences, ids, starts, ends):
        encoding = reference.encode(text, add_special_tokens=False)
        if encoding.ids != row:
            bad_ids.append(text)
            continue
        data = text.encode("utf-8")
        chars = [(len(data[:s].decode("utf-8")), len(data[:e].decode("utf-8")))
                 for s, e in zip(start, end)]
        expected = [without_space(text, token, s, e)
                    for token, (s, e) in zip(encoding.tokens, encoding.offsets)]
        # A lone "▁" carries no text: only that it is empty is compared (before a
        # word that starts with a removed character, such as ALBERT's `` -> ", it sits
        # at the removed one).
        lone = [t == "\u2581" for t in encoding.tokens]
        if [c if not x else c[0] == c[1] for c, x in zip(chars, lone)] != [
                e if not x else True for e, x in zip(expected, lone)]:
            bad_offsets.append((text, chars, encoding.offsets))
    return bad_ids, bad_offsets


def without_space(text, token, start, end):
    """`tokenizers`' character span in kerabert's convention: without the whitespace a
    `▁` piece may cover (Hugging Face's pre-tokenizers differ there: Metaspace alone keeps
    it, WhitespaceSplit drops it), a lone `▁` empty at its word's start."""
    while start < end and text[start].isspace():
        start += 1
    if token == "\u2581":
        return (start, start)
    return (start, max(start, end))


def only_digit_ties(texts):
    """Ids may differ only on runs like "000" that split into the same pieces in two
    orders ("00"+"0" or "0"+"00"): an exact tie, which SentencePiece and `tokenizers`
    break differently."""
    return all(any(c * 3 in t for c in "0123456789") for t in texts)


@pytest.mark.parametrize("name", FAMILIES)
def test_ids_and_offsets_match_tokenizers_on_fixture_sentences(name):
    sentences = [str(s).replace(" ||| ", " ") for s in
                 np.load(FIXTURES / name / "reference.npz")["sentences"]] + EXTRA
    bad_ids, bad_offsets = mismatches(name, sentences)
    assert bad_ids == [] and bad_offsets == []
    assert mismatches(name, COMPATIBILITY)[0] == []


@requires_shared_data
@pytest.mark.parametrize("name", FAMILIES)
def test_ids_and_offsets_match_tokenizers_on_real_sentences(name):
    sentences = real_sentences()
    assert len(sentences) > 5000
    bad_ids, bad_offsets = mismatches(name, sentences)
    assert len(bad_ids) <= 8 and only_digit_ties(bad_ids), bad_ids
    assert len(bad_offsets) <= 0.01 * len(sentences), bad_offsets[:3]


def test_pair_layouts_follow_the_post_processor():
    xlmr, albert = tokenizer("xlm_roberta"), tokenizer("albert")
    assert (xlmr.separators_between, xlmr.pair_segment_id) == (2, 0)
    assert (albert.separators_between, albert.pair_segment_id) == (1, 1)
    for name, ours in (("xlm_roberta", xlmr), ("albert", albert)):
        packed = ours.pack([ours(tf.constant(["a fine film"])), ours(tf.constant(["dull"]))], 16)
        encoding = hugging_face(name).encode("a fine film", "dull")
        n = len(encoding.ids)
        assert packed["token_ids"].numpy()[0, :n].tolist() == encoding.ids
        assert packed["segment_ids"].numpy()[0, :n].tolist() == encoding.type_ids
        assert packed["padding_mask"].numpy()[0].tolist() == [1] * n + [0] * (16 - n)


def test_doubled_character_replacement_pairs_from_the_left():
    albert = tokenizer("albert")  # Replace `` -> " and '' -> ", as ALBERT's tokenizer does
    reference = hugging_face("albert")
    for text in ["``a''", "```b", "````", "c``", "'' ''", "`"]:
        assert albert(tf.constant([text])).to_list()[0] == reference.encode(
            text, add_special_tokens=False).ids, text


def test_shapes_ragged_words_and_scalars():
    ours = tokenizer("xlm_roberta")
    words = tf.ragged.constant([["john", "smith"], ["paris"]])
    nested = ours(words)
    assert nested.shape.rank == 3 and nested.row_lengths().numpy().tolist() == [2, 1]
    assert nested[0, 1].numpy().tolist() == ours(tf.constant(["smith"]))[0].numpy().tolist()
    dense = ours(tf.constant([["john", "smith"], ["paris", "fine"]]))
    assert dense.shape[:2] == (2, 2)
    scalar = ours.tokenize_with_offsets(tf.constant("paris"))[0]
    assert scalar.numpy().tolist() == ours(tf.constant(["paris"]))[0].numpy().tolist()


def test_saved_assets_rebuild_the_same_tokenizer(tmp_path):
    ours = tokenizer("albert")
    ours.save_assets(str(tmp_path))
    rebuilt = SentencePieceTokenizer.from_config(ours.get_config())
    rebuilt.load_assets(str(tmp_path))
    text = tf.constant(EXTRA + COMPATIBILITY)
    assert rebuilt(text).to_list() == ours(text).to_list()
    assert rebuilt.steps == ours.steps and rebuilt.vocabulary == ours.vocabulary


def test_special_pieces_are_never_produced_from_text():
    ours = tokenizer("deberta_v3")
    ids = set(ours(tf.constant(["[CLS] [SEP] [PAD] [MASK] text"])).flat_values.numpy().tolist())
    assert not ids & {ours.cls_id, ours.sep_id, ours.pad_id, ours.mask_id}
    assert ours.mask_id == ours.vocabulary_size - 1  # appended after the pieces, as in HF
    flags = ours.continuation_flags()
    assert not flags[ours.token_to_id("\u2581a")] and flags[ours.token_to_id("a")]


def test_model_proto_is_a_sentencepiece_model():
    pieces = [["<unk>", 0.0], ["<s>", 0.0], ["\u2581ab", -1.0], ["\u2581a", -2.0], ["b", -2.0]]
    import tensorflow_text as tf_text

    model = tf_text.SentencepieceTokenizer(model_proto(pieces, 0, None, {"<s>"}),
                                           out_type=tf.int32)
    # "▁ab", "▁a", then "▁b" is no piece: an unknown "▁" and "b"
    assert model.tokenize(["ab a b"]).to_list() == [[2, 3, 0, 4]]
    assert model.id_to_string(2).numpy().decode() == "\u2581ab"


def test_unsupported_tokenizer_json_is_refused_naming_the_field(tmp_path):
    import json

    data = json.loads((FIXTURES / "albert" / "tokenizer.json").read_text(encoding="utf-8"))
    data["normalizer"]["normalizers"].insert(0, {"type": "Prepend", "prepend": "x"})
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"tokenizer.json: normalizer.*'Prepend'"):
        SentencePieceTokenizer.from_tokenizer_json(path)
    data["model"]["type"] = "BPE"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CheckpointError, match="model.type 'BPE' is not Unigram"):
        SentencePieceTokenizer.from_tokenizer_json(path)
