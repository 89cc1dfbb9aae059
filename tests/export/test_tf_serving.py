"""TF Serving bundle: warmup requests replayed under the session-based loader,
`models.config` and `batching_parameters.txt`, and the card's serving instructions."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kerabert
from tests.export.helpers import SENTENCES, tiny_sentiment

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("tensorflow_serving") is None,
    reason="tensorflow-serving-api not installed: pip install -e '.[deploy]'",
)]
VALIDATION = SENTENCES + ["the movie was fun", "not a good story", "awful"]


@pytest.fixture(scope="module")
def model():
    return tiny_sentiment()


@pytest.fixture(scope="module")
def root(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("savedmodels")
    kerabert.export(model, "savedmodel", root=root, name="sst2",
                    warmup_data={"text": VALIDATION, "label": ["1"] * len(VALIDATION)})
    kerabert.export(model, "savedmodel", root=root, name="sst2-ids", text_signature=False)
    kerabert.export(model, "tflite", root=root, name="mobile")  # no SavedModel: not served
    return root


REPLAY = textwrap.dedent("""
    import json, sys
    import tensorflow_text  # noqa: F401  (registers FastBertNormalize & co.)
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2
    tf.compat.v1.disable_eager_execution()
    logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in
            tf.compat.v1.io.tf_record_iterator(sys.argv[2])]
    replies = []
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], sys.argv[1])
        for log in logs:
            request = log.predict_log.request
            signature = meta.signature_def[request.model_spec.signature_name]
            feed = {signature.inputs[k].name: tf.make_ndarray(v)
                    for k, v in request.inputs.items()}
            out = session.run({k: v.name for k, v in signature.outputs.items()}, feed)
            replies.append({k: (v.astype(str) if v.dtype == object else v).tolist()
                            for k, v in out.items()})
    print(json.dumps(replies))
""")


def _replay(version):
    # TF Serving loads with the TF1 session-based loader: replay in a fresh process.
    result = subprocess.run(
        [sys.executable, "-c", REPLAY, str(version),
         str(version / "assets.extra" / "tf_serving_warmup_requests")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _requests(version):
    from kerabert.export import warmup

    return [log.predict_log.request for log in
            warmup.read(version / "assets.extra" / "tf_serving_warmup_requests")]


def test_warmup_requests_come_from_the_validation_texts(root):
    import tensorflow as tf

    requests = _requests(root / "sst2" / "1")
    assert 0 < len(requests) <= 1000
    assert [r.model_spec.name for r in requests] == ["sst2"] * len(requests)
    assert {r.model_spec.signature_name for r in requests} == {"serving_default"}
    sizes = [tf.make_ndarray(r.inputs["text"]).shape[0] for r in requests]
    assert sorted(set(sizes)) == [1, 8, 32]
    texts = {t.decode() for r in requests for t in tf.make_ndarray(r.inputs["text"])}
    assert texts == set(VALIDATION)


def test_every_warmup_record_replays_under_the_session_loader(root, model):
    import tensorflow as tf

    version = root / "sst2" / "1"
    replies = _replay(version)
    requests = _requests(version)
    assert len(replies) == len(requests)
    for request, reply in zip(requests, replies):
        texts = [t.decode() for t in tf.make_ndarray(request.inputs["text"])]
        predictions = model.predict_examples({"text": texts})
        assert reply["label"] == [p["label"] for p in predictions]
        np.testing.assert_allclose(reply["score"], [p["score"] for p in predictions],
                                   atol=1e-5)


def test_token_id_warmup_replays_and_matches_logits(root, model):
    import tensorflow as tf

    version = root / "sst2-ids" / "1"
    replies = _replay(version)
    requests = _requests(version)
    assert len(replies) == len(requests) > 0
    for request, reply in zip(requests, replies):
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        assert sorted(inputs) == ["padding_mask", "segment_ids", "token_ids"]
        np.testing.assert_allclose(reply["logits"], model.predict_on_batch(inputs), atol=1e-5)


def test_models_config_lists_the_savedmodel_folders(root):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse((root / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    entries = [(c.name, c.base_path, c.model_platform)
               for c in config.model_config_list.config]
    assert entries == [("sst2", "/models/sst2", "tensorflow"),
                       ("sst2-ids", "/models/sst2-ids", "tensorflow")]
    batching = (root / "batching_parameters.txt").read_text()
    allowed = [int(line.split(":")[1]) for line in batching.splitlines()
               if line.startswith("allowed_batch_sizes")]
    assert allowed == [1, 8, 32]  # the warmup's batch sizes
    assert "max_batch_size { value: 32 }" in batching


def test_card_says_how_to_serve(root, model):
    import tensorflow as tf
    import tensorflow_text

    readme = (root / "sst2" / "1" / "README.md").read_text()
    card = json.loads((root / "sst2" / "1" / "card.json").read_text())
    serving = card["tf_serving"]
    assert serving["tensorflow"] == tf.__version__
    assert serving["tensorflow_text"] == tensorflow_text.__version__
    assert f"TensorFlow {tf.__version__}" in readme and tensorflow_text.__version__ in readme
    assert f'-v "{root.resolve()}:/models" tensorflow/serving' in readme
    assert "--model_config_file=/models/models.config" in readme
    assert serving["instances"]["instances"][0] == {"text": serving["inputs"]["inputs"]["text"][0]}
    assert '"instances": [{"text": ' in readme and '"inputs": {"text": [' in readme
    assert card["warmup"]["records"] == len(_requests(root / "sst2" / "1"))
    ids_card = json.loads((root / "sst2-ids" / "1" / "card.json").read_text())
    assert ids_card["tf_serving"]["tensorflow_text"] is None
    instance = ids_card["tf_serving"]["instances"]["instances"][0]
    assert sorted(instance) == ["padding_mask", "segment_ids", "token_ids"]
    assert instance["token_ids"][0] == model.tokenizer.cls_id


def test_cli_warmup_data_and_serving_config(tmp_path, model):
    from kerabert.cli import main

    model.save(tmp_path / "model.keras")
    data = tmp_path / "dev.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{t}\tpositive\n" for t in VALIDATION[:3]))
    output = tmp_path / "serve" / "sst2" / "7"
    assert main(["export", str(tmp_path), "--format", "savedmodel", "--output", str(output),
                 "--warmup-data", str(data), "--serving-config"]) == 0
    import tensorflow as tf

    texts = {t.decode() for r in _requests(output) for t in tf.make_ndarray(r.inputs["text"])}
    assert texts == set(VALIDATION[:3])
    assert '"/models/sst2"' in (tmp_path / "serve" / "models.config").read_text()
    assert main(["export", str(tmp_path), "--format", "onnx", "--warmup-data",
                 str(data)]) == 2


def test_without_serving_protos_the_export_says_so(model, tmp_path, monkeypatch):
    from kerabert.export import warmup

    monkeypatch.setattr(warmup, "available", lambda: False)
    path = kerabert.export(model, "savedmodel", root=tmp_path, name="plain")
    assert not (path / "assets.extra").exists()
    assert "No warmup requests: `tensorflow-serving-api` was not installed" in (
        path / "README.md").read_text()
    assert (tmp_path / "models.config").is_file()
