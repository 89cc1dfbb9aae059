"""`format="huggingface"`: the way back to PyTorch, head and labels included.

The round trip runs on the tiny transformers-written fixtures (`tests/fixtures/hf/`):
kerabert loads each, exports it, and the exported folder must give transformers' own
stored logits again: read back by kerabert always, by `tokenizers` (the exported
`tokenizer.json`) always, and by transformers + PyTorch where they are installed
(`pip install -r benchmarks/requirements.txt`; not kerabert dependencies).
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

import kerabert
from kerabert.export import ExportError
from tests.export.helpers import SENTENCES, tiny_task
from tests.test_huggingface import (EXPECTED, FIXTURES, assert_matches_reference, masked,
                                    reference)

requires_transformers = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None,
    reason="transformers and torch not installed (pip install -r benchmarks/requirements.txt)",
)
AUTO_CLASSES = {
    "BertForSequenceClassification": "AutoModelForSequenceClassification",
    "BertForTokenClassification": "AutoModelForTokenClassification",
    "BertForQuestionAnswering": "AutoModelForQuestionAnswering",
    "BertForMaskedLM": "AutoModelForMaskedLM",
    "BertForPreTraining": "AutoModelForPreTraining",
}


def exported(tmp_path, name):
    model = kerabert.load_model(FIXTURES / name, compile=False)
    return kerabert.export(model, format="huggingface", root=tmp_path, name=name)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_export_reads_back_with_the_same_head_and_logits(tmp_path, name):
    path = exported(tmp_path, name)
    assert path == tmp_path / f"{name}-huggingface" / "1"
    original = json.loads((FIXTURES / name / "config.json").read_text())
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == original["architectures"]
    if EXPECTED[name][0] in ("text-classification", "ner"):
        assert config["id2label"] == original["id2label"]
    if EXPECTED[name][0] == "text-classification":  # transformers' default when unset
        expected = original.get("problem_type") or "single_label_classification"
        assert config["problem_type"] == expected
    again = kerabert.load_model(path, compile=False)
    assert again.head.get_config() == kerabert.load_model(FIXTURES / name).head.get_config()
    assert_matches_reference(again, name)


@pytest.mark.parametrize("name", ["bert_sequence_classification",
                                  "bert_cased_sequence_classification"])
def test_exported_tokenizer_json_gives_the_checkpoints_ids(tmp_path, name):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(exported(tmp_path, name) / "tokenizer.json"))
    ref = reference(name)
    for sentence, ids, mask in zip(ref["sentences"], ref["token_ids"], ref["padding_mask"]):
        encoding = tokenizer.encode(*str(sentence).split(" ||| "))
        assert encoding.ids == ids[mask == 1].tolist(), sentence


@requires_transformers
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_transformers_loads_the_export_with_the_same_logits(tmp_path, name):
    import torch
    import transformers

    path = exported(tmp_path, name)
    architecture = json.loads((path / "config.json").read_text())["architectures"][0]
    model = getattr(transformers, AUTO_CLASSES[architecture]).from_pretrained(str(path)).eval()
    assert type(model).__name__ == architecture
    ref = reference(name)
    with torch.no_grad():
        out = model(**{key: torch.tensor(ref[ours], dtype=torch.long) for key, ours in
                       (("input_ids", "token_ids"), ("token_type_ids", "segment_ids"),
                        ("attention_mask", "padding_mask"))})
    if architecture == "BertForQuestionAnswering":
        logits = np.stack([out.start_logits.numpy(), out.end_logits.numpy()], axis=1)
    elif architecture == "BertForPreTraining":
        logits = out.prediction_logits.numpy()
        np.testing.assert_allclose(out.seq_relationship_logits.numpy(),
                                   ref["seq_relationship_logits"], atol=1e-4)
    else:
        logits = out.logits.numpy()
    np.testing.assert_allclose(masked(logits, ref["padding_mask"], name), ref["logits"],
                               atol=1e-4)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
    first = [str(s).split(" ||| ")[0] for s in ref["sentences"]]
    for sentence, ids in zip(first[:5], tokenizer(first[:5])["input_ids"]):
        row = [str(s) for s in ref["sentences"]].index(sentence)
        assert ids == ref["token_ids"][row][ref["padding_mask"][row] == 1].tolist()


def test_a_kerabert_model_keeps_its_head_through_the_round_trip(tmp_path):
    from kerabert.heads.classification import SentimentHead

    model = tiny_task(SentimentHead(labels=["0", "1"],
                                    label_names={"0": "negative", "1": "positive"}))
    path = kerabert.export(model, format="huggingface", root=tmp_path, name="sst")
    config = json.loads((path / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["problem_type"] == "single_label_classification"
    again = kerabert.load_model(path, compile=False)
    assert again.head.name == "sentiment"
    assert again.head.get_config() == model.head.get_config()
    assert again.predict_examples({"text": SENTENCES}) == model.predict_examples(
        {"text": SENTENCES})
    card = json.loads((path / "card.json").read_text())
    assert card["huggingface"]["architecture"] == "BertForSequenceClassification"


def test_case_feature_tagger_is_refused_by_name(tmp_path):
    from kerabert.heads.tagging import TokenClassificationHead

    model = tiny_task(TokenClassificationHead(labels=["O", "B-PER", "I-PER"]))
    with pytest.raises(ExportError, match="case_feature=false"):
        kerabert.export(model, format="huggingface", root=tmp_path, name="ner")
    assert not (tmp_path / "ner-huggingface").exists()  # refused before any folder


def test_quantized_huggingface_export_is_refused(tmp_path):
    with pytest.raises(ExportError, match="float32"):
        kerabert.export(FIXTURES / "bert_sequence_classification", format="huggingface",
                        quantize="int8", root=tmp_path)


def test_cli_exports_a_hugging_face_folder(tmp_path, capsys):
    from kerabert.cli import main

    assert main(["export", str(FIXTURES / "bert_question_answering"), "--format",
                 "huggingface", "--root", str(tmp_path)]) == 0
    written = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert written["path"] == str(tmp_path / "bert_question_answering-huggingface" / "1")
    assert (tmp_path / "bert_question_answering-huggingface" / "1" / "model.safetensors").exists()
