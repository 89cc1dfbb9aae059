"""The tensorflow-datasets adapter fails fast offline instead of hanging."""

from __future__ import annotations

import time

import pytest

from kerabert.data import load_examples
from kerabert.data.tables import DataError
from kerabert.data.tfds import parse_spec
from kerabert.heads.classification import SentimentHead


def test_parse_spec():
    assert parse_spec("tfds:glue/sst2") == ("glue/sst2", "train")
    assert parse_spec("tfds:glue/sst2:validation") == ("glue/sst2", "validation")
    with pytest.raises(DataError):
        parse_spec("tfds:")


def test_unprepared_dataset_offline_fails_fast(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    import kerabert.data.tfds as adapter

    # Import-time and first-builder costs (tens of seconds on a loaded CI worker) are not the
    # hang this guards against: a download attempt offline retries for many minutes.
    tfds.builder("glue/sst2", data_dir=str(tmp_path / "warm"))
    probes = []
    monkeypatch.setattr(adapter, "network_available",
                        lambda timeout=3.0: probes.append(timeout) or False)
    started = time.perf_counter()
    with pytest.raises(DataError, match="cannot be reached"):
        load_examples(SentimentHead(), "tfds:glue/sst2", data_dir=str(tmp_path))
    assert probes, "the network must be probed before a download is tried"
    assert time.perf_counter() - started < 60


def test_network_probe_is_bounded():
    import kerabert.data.tfds as adapter

    started = time.perf_counter()
    adapter.network_available(timeout=1.0)  # True or False, but never a hang
    assert time.perf_counter() - started < 10


def test_download_false_fails_immediately(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError, match="download=False"):
        load_examples(SentimentHead(), "tfds:glue/sst2", data_dir=str(tmp_path), download=False)


def test_prepared_local_dataset_reads_offline(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    import tensorflow as tf

    import kerabert.data.tfds as adapter

    def no_network(timeout=3.0):
        raise AssertionError("a prepared dataset must not touch the network")

    monkeypatch.setattr(adapter, "network_available", no_network)
    features = tfds.features.FeaturesDict({
        "sentence": tfds.features.Text(),
        "label": tfds.features.ClassLabel(names=["negative", "positive"]),
    })
    split = tf.data.Dataset.from_tensor_slices({"sentence": ["good", "bad", "fine"],
                                                "label": [1, 0, 1]})
    tfds.dataset_builders.store_as_tfds_dataset(
        name="tiny_reviews", version="1.0.0", features=features, split_datasets={"train": split},
        data_dir=str(tmp_path), disable_shuffling=True)
    examples = load_examples(SentimentHead(), "tfds:tiny_reviews:train", data_dir=str(tmp_path),
                             fields={"text": "sentence", "label": "label"})
    assert sorted(zip(examples["text"], examples["label"])) == [
        ("bad", "negative"), ("fine", "positive"), ("good", "positive")]
