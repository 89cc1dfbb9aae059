"""Fine-tuned Hugging Face BERT checkpoints load with their heads, equal to PyTorch.

The fixtures under `tests/fixtures/hf/` are tiny checkpoints transformers wrote, with
every weight drawn at random with a large spread and transformers' own outputs stored
beside them (`benchmarks/reference/make_hf_fixtures.py` regenerates them), so a weight
ported to the wrong place or layout fails the 1e-4 bound by orders of magnitude.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import kerabert
from kerabert import huggingface
from kerabert.backbone import CheckpointError, load_backbone

FIXTURES = Path(__file__).parent / "fixtures" / "hf"
INPUTS = ("token_ids", "segment_ids", "padding_mask")
# fixture -> (head name, kerabert head options that must hold)
EXPECTED = {
    "bert_sequence_classification": ("text-classification",
                                     {"labels": ["negative", "neutral", "positive"],
                                      "multi_label": False}),
    "bert_multi_label": ("text-classification",
                         {"labels": ["action", "comedy", "drama", "horror"],
                          "multi_label": True}),
    "bert_token_classification": ("ner", {"scheme": "IOB2", "case_feature": False,
                                          "labels": ["O", "B-PER", "I-PER", "B-ORG", "I-ORG",
                                                     "B-LOC", "I-LOC", "B-MISC", "I-MISC"]}),
    "bert_question_answering": ("qa", {}),
    "bert_masked_lm": ("masked-lm", {"next_sentence": False}),
    "bert_pretraining": ("masked-lm", {"next_sentence": True}),
    "bert_cased_sequence_classification": ("text-classification",
                                           {"labels": ["NEGATIVE", "POSITIVE"]}),
}


def reference(name):
    return dict(np.load(FIXTURES / name / "reference.npz"))


def model_inputs(model, ref):
    inputs = {k: tf.constant(ref[k]) for k in INPUTS}
    if "mask_positions" in model.input:  # the MLM head reads the positions it is given
        rows, length = ref["token_ids"].shape
        inputs["mask_positions"] = tf.tile(tf.range(length)[None], [rows, 1])
    return inputs


def masked(logits, mask, name):
    """Logits with padded positions zeroed, as the fixture stores them."""
    logits = np.asarray(logits)
    if name == "bert_question_answering":
        return logits * mask[:, None, :]
    return logits * mask[:, :, None] if logits.ndim == 3 else logits


def assert_matches_reference(model, name):
    ref = reference(name)
    out = model(model_inputs(model, ref))
    mask = ref["padding_mask"]
    if isinstance(out, dict):
        np.testing.assert_allclose(masked(out["mlm"], mask, name), ref["logits"], atol=1e-4)
        np.testing.assert_allclose(np.asarray(out["next_sentence"]),
                                   ref["seq_relationship_logits"], atol=1e-4)
    else:
        np.testing.assert_allclose(masked(out, mask, name), ref["logits"], atol=1e-4)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fine_tuned_checkpoint_loads_with_its_head(name):
    model = kerabert.load_model(FIXTURES / name, compile=False)
    head_name, options = EXPECTED[name]
    assert model.head.name == head_name
    config = model.head.get_config()
    assert {k: config[k] for k in options} == options
    assert_matches_reference(model, name)
    ref = reference(name)
    sequence = model.backbone({k: tf.constant(ref[k]) for k in INPUTS})["sequence_output"]
    np.testing.assert_allclose(np.asarray(sequence) * ref["padding_mask"][:, :, None],
                               ref["sequence_output"], atol=1e-4)


@pytest.mark.parametrize("name", ["bert_sequence_classification",
                                  "bert_cased_sequence_classification"])
def test_in_graph_tokenizer_gives_the_checkpoints_token_ids(name):
    """Uncased (accents stripped) and cased (accents kept, no lower-casing): the ids of
    `tokenizer.json` (transformers' tokenizer) on sentences with accented and non-Latin
    words, pairs included."""
    ref = reference(name)
    _, tokenizer = load_backbone(FIXTURES / name)
    for sentence, ids, mask in zip(ref["sentences"], ref["token_ids"], ref["padding_mask"]):
        segments = [tokenizer([str(part)]) for part in str(sentence).split(" ||| ")]
        packed = tokenizer.pack(segments, int(mask.sum()))
        assert np.asarray(packed["token_ids"])[0].tolist() == ids[mask == 1].tolist(), sentence
    assert tokenizer.lowercase == (name == "bert_sequence_classification")


def test_predict_decodes_with_the_checkpoints_label_names():
    model = kerabert.load_model(FIXTURES / "bert_multi_label", compile=False)
    ref = reference("bert_multi_label")
    [prediction] = model.predict_examples({"text": [str(ref["sentences"][0])]})
    expected = 1 / (1 + np.exp(-ref["logits"][0].astype(np.float64)))
    assert list(prediction["scores"]) == ["action", "comedy", "drama", "horror"]
    np.testing.assert_allclose(list(prediction["scores"].values()), expected, atol=1e-4)
    assert prediction["labels"] == [name for name, p in zip(prediction["scores"], expected)
                                    if p >= 0.5]


def test_token_classification_tags_are_the_checkpoints_first_piece_arg_max():
    """With arg-max decoding, each word's tag is the arg-max of transformers' logits at
    its first word piece (the fixture's sentence 4: names, Cyrillic, CJK, punctuation)."""
    model = kerabert.load_model(FIXTURES / "bert_token_classification", compile=False)
    model.head.decoding = "argmax"
    ref = reference("bert_token_classification")
    words = str(ref["sentences"][4]).split()  # "Friday." and "東京" are several pieces
    pieces = [len(model.tokenizer([word])[0].numpy()) for word in words]
    firsts = 1 + np.concatenate([[0], np.cumsum(pieces)[:-1]]).astype(int)
    [prediction] = model.predict_examples({"text": [words]})
    expected = [model.head.labels[i] for i in ref["logits"][4][firsts].argmax(-1)]
    assert prediction["tags"] == expected


def test_pooler_less_checkpoint_loads_as_a_backbone():
    """Token, span and masked-LM checkpoints have no pooler; their encoder still loads
    (keras-hub's own converter refuses them)."""
    backbone, _ = load_backbone(FIXTURES / "bert_token_classification")
    ref = reference("bert_token_classification")
    out = backbone({k: tf.constant(ref[k]) for k in INPUTS})["sequence_output"]
    np.testing.assert_allclose(np.asarray(out) * ref["padding_mask"][:, :, None],
                               ref["sequence_output"], atol=1e-4)


def test_vocabulary_is_read_from_tokenizer_json_without_vocab_txt(tmp_path):
    """transformers 5's `save_pretrained` writes tokenizer.json and no vocab.txt."""
    folder = copy_fixture(tmp_path, "bert_cased_sequence_classification")
    (folder / "vocab.txt").unlink()
    _, tokenizer = load_backbone(folder)
    _, original = load_backbone(FIXTURES / "bert_cased_sequence_classification")
    assert list(tokenizer.vocabulary) == list(original.vocabulary)
    assert tokenizer.lowercase is False


def copy_fixture(tmp_path, name, **config_changes):
    folder = tmp_path / name
    shutil.copytree(FIXTURES / name, folder)
    config = json.loads((folder / "config.json").read_text())
    for key, value in config_changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("changes, message", [
    ({"problem_type": "regression"}, "regression"),
    ({"architectures": ["BertModel"]}, "pass it as --backbone"),
    ({"architectures": ["BertForMultipleChoice"]}, "BertForMultipleChoice"),
    ({"model_type": "roberta"}, "model_type 'roberta' is not BERT .*--backbone"),
    ({"id2label": {"0": "negative", "2": "positive"}, "num_labels": 3},
     "no label for class"),
])
def test_unreadable_checkpoints_name_the_file_and_field(tmp_path, changes, message):
    folder = copy_fixture(tmp_path, "bert_sequence_classification", **changes)
    with pytest.raises(CheckpointError, match=message) as error:
        kerabert.load_model(folder)
    assert str(folder / "config.json") in str(error.value)


def test_tagger_labels_that_are_not_tags_are_refused(tmp_path):
    labels = {str(i): f"LABEL_{i}" for i in range(9)}
    folder = copy_fixture(tmp_path, "bert_token_classification", id2label=labels)
    with pytest.raises(CheckpointError, match="not entity tags"):
        kerabert.load_model(folder)


def test_masked_lm_checkpoint_without_its_head_is_refused(tmp_path):
    from safetensors.numpy import load_file, save_file

    folder = copy_fixture(tmp_path, "bert_masked_lm")
    tensors = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in tensors.items() if not k.startswith("cls.")},
              str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="without its head weights"):
        kerabert.load_model(folder)


def test_head_weights_of_the_wrong_shape_are_named(tmp_path):
    folder = copy_fixture(tmp_path, "bert_sequence_classification",
                          id2label={"0": "a", "1": "b"}, num_labels=2)
    with pytest.raises(CheckpointError, match=r"classifier.weight has shape \(3, 32\)"):
        kerabert.load_model(folder)


def test_cli_predict_takes_a_hugging_face_folder(capsys):
    from kerabert.cli import main

    ref = reference("bert_sequence_classification")
    assert main(["predict", str(FIXTURES / "bert_sequence_classification"),
                 "--text", str(ref["sentences"][1])]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = ["negative", "neutral", "positive"][int(np.argmax(ref["logits"][1]))]
    assert line["label"] == expected


def test_cli_evaluate_takes_a_hugging_face_folder(tmp_path, capsys):
    from kerabert.cli import main

    ref = reference("bert_sequence_classification")
    names = ["negative", "neutral", "positive"]
    predicted = [names[i] for i in ref["logits"].argmax(-1)]
    rows = [(str(s), label) for s, label in zip(ref["sentences"], predicted) if "|||" not in s]
    data = tmp_path / "dev.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{s}\t{label}\n" for s, label in rows))
    assert main(["evaluate", str(FIXTURES / "bert_sequence_classification"),
                 "--data", str(data)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["accuracy"] == 1.0  # the labels are transformers' own predictions
