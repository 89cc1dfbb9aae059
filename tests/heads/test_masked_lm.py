"""The masked-LM head: masking statistics, whole words, tied weights, checkpoint heads."""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerabert.heads import registry
from kerabert.heads.masked_lm import (
    IGNORED_TARGET,
    MaskedLMHead,
    MaskedLMPreprocessor,
    MaskedPerplexity,
    MaskedTokenAccuracy,
)
from kerabert.task import Task
from tests.conftest import make_tiny_backbone, requires_pretrained

LENGTH = 64


def _packed_rows(tokenizer, rows, seed=0):
    """Rows of `[CLS] words... [SEP] [PAD]...` with varied lengths, as the corpus packs."""
    rng = np.random.default_rng(seed)
    words = [i for i in range(tokenizer.vocabulary_size) if i not in tokenizer.special_ids]
    token_ids = np.full((rows, LENGTH), tokenizer.pad_id, np.int32)
    for row in range(rows):
        length = rng.integers(20, LENGTH - 1)
        token_ids[row, 0] = tokenizer.cls_id
        token_ids[row, 1 : length + 1] = rng.choice(words, length)
        token_ids[row, length + 1] = tokenizer.sep_id
    return token_ids


def test_registered_under_masked_lm():
    assert registry.get("masked-lm") is MaskedLMHead


def test_masking_statistics(tiny_tokenizer):
    keras.utils.set_random_seed(1)
    preprocessor = MaskedLMPreprocessor(tiny_tokenizer, LENGTH)
    original = _packed_rows(tiny_tokenizer, 3000)
    features, targets, _ = preprocessor({"token_ids": tf.constant(original)})
    masked = features["token_ids"].numpy()
    positions = features["mask_positions"].numpy()
    targets = targets.numpy()
    filled = targets != IGNORED_TARGET
    rows = np.repeat(np.arange(len(original))[:, None], positions.shape[1], axis=1)

    special = np.isin(original, tiny_tokenizer.special_ids)
    # Special tokens are never selected and never changed.
    assert not special[rows[filled], positions[filled]].any()
    np.testing.assert_array_equal(masked[special], original[special])
    # Targets are the original ids at the selected positions.
    np.testing.assert_array_equal(targets[filled], original[rows[filled], positions[filled]])
    # 15% of the ordinary tokens are selected (ceil per row).
    selected = filled.sum() / (~special).sum()
    assert 0.145 < selected < 0.165, selected
    # Of the selected: 80% [MASK], 10% random, 10% kept (a random token may equal the
    # original with probability 1/vocabulary).
    after = masked[rows[filled], positions[filled]]
    mask_share = np.mean(after == tiny_tokenizer.mask_id)
    kept_share = np.mean(after == targets[filled])
    assert abs(mask_share - 0.8) < 0.02, mask_share
    assert abs(kept_share - 0.1) < 0.02, kept_share
    assert abs(1 - mask_share - kept_share - 0.1) < 0.02
    # Positions that were not selected are untouched.
    untouched = np.ones_like(original, bool)
    untouched[rows[filled], positions[filled]] = False
    np.testing.assert_array_equal(masked[untouched], original[untouched])


def test_masks_are_fresh_at_every_call(tiny_tokenizer):
    preprocessor = MaskedLMPreprocessor(tiny_tokenizer, LENGTH)
    rows = tf.constant(_packed_rows(tiny_tokenizer, 64))
    first = preprocessor({"token_ids": rows})[0]["mask_positions"].numpy()
    second = preprocessor({"token_ids": rows})[0]["mask_positions"].numpy()
    assert not np.array_equal(first, second)


@pytest.mark.slow
def test_whole_word_masking_selects_every_piece_of_a_word(tiny_tokenizer):
    keras.utils.set_random_seed(2)
    vocabulary = tiny_tokenizer.vocabulary
    continuation = np.array([t.startswith("##") for t in vocabulary])
    preprocessor = MaskedLMPreprocessor(tiny_tokenizer, LENGTH, whole_word=True)
    rng = np.random.default_rng(0)
    starts = [i for i, t in enumerate(vocabulary)
              if not t.startswith("##") and i not in tiny_tokenizer.special_ids]
    suffixes = [i for i, t in enumerate(vocabulary) if t.startswith("##")]
    original = np.full((800, LENGTH), tiny_tokenizer.pad_id, np.int32)
    for row in range(len(original)):
        pieces = [tiny_tokenizer.cls_id]
        while len(pieces) < LENGTH - 6:
            pieces.append(rng.choice(starts))
            pieces.extend(rng.choice(suffixes, rng.integers(0, 3)))
        pieces.append(tiny_tokenizer.sep_id)
        original[row, : len(pieces)] = pieces
    features, targets, _ = preprocessor({"token_ids": tf.constant(original)})
    positions, targets = features["mask_positions"].numpy(), targets.numpy()
    words_total = words_selected = 0
    for row in range(len(original)):
        chosen = set(positions[row][targets[row] != IGNORED_TARGET].tolist())
        ids = original[row]
        word = []
        for position in range(1, LENGTH):
            if ids[position] in tiny_tokenizer.special_ids or not continuation[ids[position]]:
                if word:
                    inside = [p in chosen for p in word]
                    assert all(inside) or not any(inside), (row, word, chosen)
                    words_total += 1
                    words_selected += inside[0]
                word = [] if ids[position] in tiny_tokenizer.special_ids else [position]
            else:
                word.append(position)
        assert not any(ids[p] in tiny_tokenizer.special_ids for p in chosen)
    assert 0.14 < words_selected / words_total < 0.18


@pytest.mark.slow
def test_fill_mask_query_keeps_the_mask_token(tiny_tokenizer, tiny_backbone):
    head = MaskedLMHead(top_k=3)
    model = Task(tiny_backbone, head, tiny_tokenizer, 32)
    features, targets, _ = head.preprocessor(tiny_tokenizer, 32)(
        {"text": tf.constant(["the film was [MASK] .", "no mask here"])}
    )
    assert targets is None
    token_ids = features["token_ids"].numpy()
    assert token_ids[0, 4] == tiny_tokenizer.mask_id
    assert features["mask_positions"].numpy()[0, 0] == 4
    results = model.predict_examples({"text": ["the film was [MASK] .", "no mask here"]})
    assert results[1] == {"masks": []}
    (mask,) = results[0]["masks"]
    assert mask["position"] == 4 and len(mask["predictions"]) == 3
    scores = [p["score"] for p in mask["predictions"]]
    assert scores == sorted(scores, reverse=True)


def test_output_projection_is_tied_to_the_token_embedding(tiny_tokenizer, tiny_backbone):
    model = Task(tiny_backbone, MaskedLMHead(), tiny_tokenizer, 32)
    mlm = model.get_layer("mlm_head")
    assert mlm.token_embedding is tiny_backbone.token_embedding
    vocabulary = tiny_tokenizer.vocabulary_size
    # No separate [hidden, vocabulary] output kernel: only the [vocabulary] bias.
    own = [tuple(w.shape) for w in mlm.weights if w.path.startswith("mlm_head")]
    assert (vocabulary,) in own and (32, vocabulary) not in own and (vocabulary, 32) not in own
    inputs = {
        "token_ids": np.array([[2, 10, 4, 11, 3]], np.int32),
        "segment_ids": np.zeros((1, 5), np.int32),
        "padding_mask": np.ones((1, 5), np.int32),
        "mask_positions": np.array([[2]], np.int32),
    }
    before = model.predict_on_batch(inputs)
    embeddings = tiny_backbone.token_embedding.embeddings
    embeddings.assign(embeddings.numpy() * 2.0)  # the same variable feeds the output layer
    after = model.predict_on_batch(inputs)
    assert not np.allclose(before, after)


def test_masked_metrics_ignore_empty_slots():
    accuracy = MaskedTokenAccuracy()
    accuracy.update_state([[2, -1, 0]], [[[0, 0, 1.0], [1.0, 0, 0], [0, 1.0, 0]]])
    assert float(accuracy.result()) == pytest.approx(0.5)
    perplexity = MaskedPerplexity()
    perplexity.update_state([[0, -1]], [[[0.0, 0.0], [5.0, 0.0]]])
    assert float(perplexity.result()) == pytest.approx(2.0, rel=1e-5)


def test_config_round_trip():
    head = MaskedLMHead(mask_selection_rate=0.2, whole_word=True, next_sentence=True, top_k=2)
    again = MaskedLMHead.from_config(head.get_config())
    assert again.get_config() == head.get_config()
    assert again.fields == ("text", "text_pair")
    assert "next_sentence" in again.target_fields
    with pytest.raises(ValueError, match="mask_token_rate"):
        MaskedLMHead(mask_token_rate=0.9, random_token_rate=0.2)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                    reason="transformers is needed to write a reference checkpoint")
@pytest.mark.slow
def test_loads_the_heads_of_a_hugging_face_checkpoint(tmp_path, tiny_vocabulary):
    import torch
    import transformers

    import kerabert

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=len(tiny_vocabulary), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
    )
    reference = transformers.BertForPreTraining(config).eval()
    with torch.no_grad():  # a head that is not the default initialisation
        reference.cls.predictions.bias.normal_()
        reference.cls.predictions.transform.LayerNorm.weight.normal_()
    reference.save_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("\n".join(tiny_vocabulary) + "\n")

    backbone, tokenizer = kerabert.load_backbone(tmp_path)
    head = MaskedLMHead(next_sentence=True)
    model = Task(backbone, head, tokenizer, 16)
    message = head.load_checkpoint_weights(model, str(tmp_path))
    assert "loaded the masked-LM head" in message and "next-sentence" in message

    token_ids = np.array([[2, 10, 4, 11, 12, 3, 13, 14, 3]], np.int32)
    segment_ids = np.array([[0, 0, 0, 0, 0, 0, 1, 1, 1]], np.int32)
    with torch.no_grad():
        expected = reference(
            input_ids=torch.tensor(token_ids, dtype=torch.long),
            token_type_ids=torch.tensor(segment_ids, dtype=torch.long),
        )
    positions = np.array([[1, 2, 7]], np.int32)
    outputs = model.predict_on_batch({
        "token_ids": token_ids, "segment_ids": segment_ids,
        "padding_mask": np.ones_like(token_ids), "mask_positions": positions,
    })
    np.testing.assert_allclose(
        outputs["mlm"][0], expected.prediction_logits.numpy()[0, positions[0]], atol=2e-4
    )
    np.testing.assert_allclose(
        outputs["next_sentence"], expected.seq_relationship_logits.numpy(), atol=2e-4
    )


def test_a_checkpoint_without_a_head_says_so(tiny_tokenizer, tmp_path):
    from kerabert.backbone import save_backbone

    backbone = make_tiny_backbone()
    save_backbone(backbone, tiny_tokenizer, tmp_path)
    head = MaskedLMHead()
    model = Task(backbone, head, tiny_tokenizer, 16)
    message = head.load_checkpoint_weights(model, str(tmp_path))
    assert "no masked-LM head" in message and "newly initialised" in message


@requires_pretrained
def test_all_minilm_has_no_mlm_head():
    from kerabert.heads.masked_lm_weights import read_head_weights

    found = read_head_weights("all-minilm-l6-v2")
    assert found is not None and "mlm" not in found.weights
    assert found.source.endswith("model.safetensors")


def test_reads_the_heads_of_a_google_checkpoint(tmp_path):
    from kerabert.heads.masked_lm_weights import read_head_weights

    rng = np.random.default_rng(0)
    values = {
        "cls/predictions/transform/dense/kernel": rng.normal(size=(4, 4)),
        "cls/predictions/transform/dense/bias": rng.normal(size=4),
        "cls/predictions/transform/LayerNorm/gamma": rng.normal(size=4),
        "cls/predictions/transform/LayerNorm/beta": rng.normal(size=4),
        "cls/predictions/output_bias": rng.normal(size=9),
        "cls/seq_relationship/output_weights": rng.normal(size=(2, 4)),
        "cls/seq_relationship/output_bias": rng.normal(size=2),
    }
    prefix = tmp_path / "bert_model.ckpt"
    with tf.Graph().as_default():
        for name, value in values.items():
            tf.compat.v1.Variable(value.astype(np.float32), name=name)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver().save(session, str(prefix))
    found = read_head_weights(str(prefix))
    np.testing.assert_allclose(found.weights["mlm"]["dense_kernel"],
                               values["cls/predictions/transform/dense/kernel"], rtol=1e-6)
    np.testing.assert_allclose(found.weights["mlm"]["output_bias"],
                               values["cls/predictions/output_bias"], rtol=1e-6)
    # Google stores the NSP kernel as [2, hidden]; Keras wants [hidden, 2].
    np.testing.assert_allclose(found.weights["nsp"]["kernel"],
                               values["cls/seq_relationship/output_weights"].T, rtol=1e-6)
