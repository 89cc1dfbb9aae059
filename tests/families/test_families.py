"""DistilBERT, ELECTRA, RoBERTa, XLM-RoBERTa, ALBERT and DeBERTa-v3 load from Hugging Face
folders, equal to PyTorch.

The fixtures under `tests/fixtures/families/` are tiny `...ForSequenceClassification`
checkpoints transformers wrote, every weight random with a large spread, with
transformers' own encoder outputs and token ids stored beside them
(`benchmarks/reference/make_family_fixtures.py` regenerates them).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerabert
from kerabert.backbone import CheckpointError, load_backbone
from kerabert.byte_pair import BytePairTokenizer
from kerabert.families import FAMILIES, EncoderBackbone
from kerabert.sentencepiece import SentencePieceTokenizer
from kerabert.tokenizer import BertTokenizer

FIXTURES = Path(__file__).parents[1] / "fixtures" / "families"
NAMES = ("distilbert", "electra", "roberta", "xlm_roberta", "albert", "deberta_v3")
KERAS_HUB = {"distilbert": "DistilBertBackbone", "electra": "ElectraBackbone",
             "roberta": "RobertaBackbone", "xlm_roberta": "XLMRobertaBackbone",
             "albert": "AlbertBackbone", "deberta_v3": "DebertaV3Backbone"}
TOKENIZERS = {"distilbert": BertTokenizer, "electra": BertTokenizer,
              "roberta": BytePairTokenizer}


def reference(name):
    return dict(np.load(FIXTURES / name / "reference.npz"))


def packed(tokenizer, sentences, length):
    rows = []
    for sentence in sentences:
        parts = [tokenizer(tf.constant([p])) for p in str(sentence).split(" ||| ")]
        rows.append({k: v.numpy()[0] for k, v in tokenizer.pack(parts, length).items()})
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


@pytest.mark.parametrize("name", NAMES)
def test_token_ids_and_sequence_output_match_pytorch(name):
    ref = reference(name)
    backbone, tokenizer = load_backbone(FIXTURES / name)
    assert isinstance(backbone, EncoderBackbone) and backbone.family == KERAS_HUB[name]
    assert isinstance(tokenizer, TOKENIZERS.get(name, SentencePieceTokenizer))
    features = packed(tokenizer, ref["sentences"], ref["token_ids"].shape[1])
    for key in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(features[key], ref[key], err_msg=key)
    outputs = backbone({k: tf.constant(v) for k, v in features.items()})
    mask = ref["padding_mask"][:, :, None]
    sequence = outputs["sequence_output"].numpy() * mask
    assert np.abs(ref["sequence_output"]).max() > 0.5  # a real signal, not near zero
    np.testing.assert_allclose(sequence, ref["sequence_output"], atol=1e-4, rtol=0)
    if "pooled_output" in ref:  # ALBERT's pooler comes from the checkpoint
        np.testing.assert_allclose(outputs["pooled_output"].numpy(), ref["pooled_output"],
                                   atol=1e-4, rtol=0)


def test_a_misplaced_weight_breaks_parity():
    """The bound above can fail: swapping two layers' query kernels moves the output."""
    ref = reference("electra")
    backbone, tokenizer = load_backbone(FIXTURES / "electra")
    blocks = backbone.encoder.transformer_layers
    first, second = (b._self_attention_layer.query_dense.kernel for b in blocks[:2])
    saved = first.numpy()
    first.assign(second.numpy())
    second.assign(saved)
    features = packed(tokenizer, ref["sentences"], ref["token_ids"].shape[1])
    sequence = backbone({k: tf.constant(v) for k, v in features.items()})["sequence_output"]
    error = np.abs(sequence.numpy() * ref["padding_mask"][:, :, None] - ref["sequence_output"])
    assert error.max() > 1e-2


def test_every_family_is_listed_and_others_are_refused_by_name(tmp_path):
    assert set(FAMILIES) == {"distilbert", "electra", "roberta", "xlm-roberta", "albert",
                             "deberta-v2"}
    folder = tmp_path / "gpt"
    shutil.copytree(FIXTURES / "distilbert", folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "gpt2"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"config.json: model_type 'gpt2' is not "
                       r"supported; kerabert loads bert, distilbert, electra"):
        load_backbone(folder)


@pytest.mark.parametrize("name, field, value, message", [
    ("deberta_v3", "share_att_key", False, "share_att_key False is not supported"),
    ("deberta_v3", "pos_att_type", ["c2p"], "pos_att_type"),
    ("xlm_roberta", "layer_norm_eps", 1e-12, "layer_norm_eps 1e-12 is not supported"),
    ("distilbert", "sinusoidal_pos_embds", True, "sinusoidal_pos_embds True"),
    ("albert", "num_hidden_groups", 3, "not a multiple of num_hidden_groups 3"),
    ("electra", "hidden_act", "swish", "hidden_act 'swish' is not supported"),
])
def test_configs_keras_hub_cannot_compute_are_refused(tmp_path, name, field, value, message):
    folder = tmp_path / name
    shutil.copytree(FIXTURES / name, folder)
    config = json.loads((folder / "config.json").read_text())
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message):
        load_backbone(folder)


def test_missing_tokenizer_json_names_the_fix(tmp_path):
    folder = tmp_path / "albert"
    shutil.copytree(FIXTURES / "albert", folder)
    (folder / "tokenizer.json").unlink()
    (folder / "spiece.model").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"no tokenizer.json \(only \['spiece.model'\]\)"
                       r".*save_pretrained"):
        load_backbone(folder)


def test_weights_of_the_wrong_shape_name_the_tensor(tmp_path):
    folder = tmp_path / "distilbert"
    shutil.copytree(FIXTURES / "distilbert", folder)
    config = json.loads((folder / "config.json").read_text())
    config["hidden_dim"] = 96
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"distilbert.transformer.layer.0.ffn.lin1.weight "
                       r"has shape \(64, 32\)"):
        load_backbone(folder)


def test_task_saves_and_reloads_with_the_family_backbone_in_a_new_process(tmp_path):
    import subprocess
    import sys

    model = kerabert.build_model("sentiment", backbone=str(FIXTURES / "xlm_roberta"),
                                 labels=["neg", "pos"], sequence_length=32)
    texts = ["a fine film", "Café in Zürich"]
    before = [p["score"] for p in model.predict_examples({"text": texts})]
    model.save(tmp_path / "model.keras")
    # A fresh interpreter: the saved classes must register on `kerabert.load_model`.
    code = ("import json, sys, kerabert; m = kerabert.load_model(sys.argv[1]); "
            "print(json.dumps([type(m.backbone).__name__, type(m.tokenizer).__name__, "
            "[p['score'] for p in m.predict_examples({'text': json.loads(sys.argv[2])})]]))")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.keras"),
                             json.dumps(texts)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    backbone, tokenizer, after = json.loads(result.stdout.strip().splitlines()[-1])
    assert (backbone, tokenizer) == ("EncoderBackbone", "SentencePieceTokenizer")
    np.testing.assert_allclose(after, before, atol=1e-6)


def test_lora_and_frozen_modes_reach_the_wrapped_encoder():
    from kerabert.finetuning import apply_mode, lora_layers, parameter_counts

    model = kerabert.build_model("sentiment", backbone=str(FIXTURES / "deberta_v3"),
                                 labels=["neg", "pos"], sequence_length=32, compile=False)
    full = parameter_counts(model)["trainable"]
    apply_mode(model, "lora", lora_rank=2)
    assert len(lora_layers(model)) == 4  # query and value of each of the 2 blocks
    assert 0 < parameter_counts(model)["trainable"] < full / 4


def test_mixed_precision_builds_the_encoder_under_the_policy():
    backbone, _ = load_backbone(FIXTURES / "albert", dtype="mixed_bfloat16")
    assert backbone.dtype_policy.name == "mixed_bfloat16"
    assert backbone.encoder.dtype_policy.name == "mixed_bfloat16"
    assert backbone.pooled_dense.dtype_policy.name == "mixed_bfloat16"


def test_encoder_backbone_round_trips_its_config():
    backbone, _ = load_backbone(FIXTURES / "electra")  # exact GELU over keras-hub's tanh form
    assert backbone.hidden_activation == "gelu"
    rebuilt = EncoderBackbone.from_config(keras.saving.serialize_keras_object(
        backbone)["config"])
    assert rebuilt.family == "ElectraBackbone" and rebuilt.hidden_activation == "gelu"
    assert rebuilt.count_params() == backbone.count_params()


def test_a_fine_tuned_family_checkpoint_points_to_its_backbone():
    with pytest.raises(CheckpointError, match=r"model_type 'xlm-roberta' is not BERT .*"
                       r"loads as a backbone: --backbone FOLDER"):
        kerabert.load_model(FIXTURES / "xlm_roberta")
