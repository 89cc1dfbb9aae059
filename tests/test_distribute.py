"""Strategies and distributed datasets: real MirroredStrategy (2 logical CPUs) and a
real 2-process MultiWorkerMirroredStrategy run on 127.0.0.1, plus TPU dataset rules."""

from __future__ import annotations

import json
import os
import subprocess
import time

import numpy as np
import pytest

from tests.training_helpers import (
    free_ports,
    run_script,
    save_tiny_checkpoint,
    script_command,
    subprocess_env,
    tiny_data,
)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    # No dropout, so two strategies compute the same function.
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", dropout=0.0)


def test_mirrored_over_two_cpus_matches_one_device(tiny_checkpoint):
    result = run_script(
        {
            "logical_cpus": 2,
            "compare_strategies": ["default", "mirrored"],
            "backbone": tiny_checkpoint,
            "sequence_length": 32,
            "batch_size": 8,
            "epochs": 3,
            "steps_per_epoch": 4,
            "learning_rate": 1e-2,
            "length_mode": "fixed",
            "dropout": 0.0,
            "tensorboard": False,
        },
        env=subprocess_env(),
    )
    one, mirrored = result["default"], result["mirrored"]
    assert one["replicas"] == 1 and mirrored["replicas"] == 2
    assert one["steps"] == mirrored["steps"] == 12
    # The loss moves (it is a real training) and both strategies follow the same curve.
    assert one["loss"][0] != pytest.approx(one["loss"][-1], abs=1e-3)
    np.testing.assert_allclose(mirrored["loss"], one["loss"], rtol=2e-3, atol=2e-4)


def test_multi_worker_two_processes_write_one_checkpoint(tiny_checkpoint, tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    output = tmp_path / "run"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    options = {
        "strategy": "multi-worker",
        "backbone": tiny_checkpoint,
        "sequence_length": 32,
        "batch_size": 8,
        "epochs": 2,
        "data_size": 48,
        "learning_rate": 1e-2,
        "output_dir": str(output),
        # 21 = batches of 8, 8, 5: the workers get unequal validation shards.
        "validation_data": tiny_data(21, seed=1),
    }
    processes = []
    logs = []
    try:
        for index in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            log = open(tmp_path / f"worker{index}.log", "w+")
            logs.append(log)
            processes.append(subprocess.Popen(
                script_command(options), stdout=log, stderr=subprocess.STDOUT,
                env=subprocess_env(TF_CONFIG=tf_config, TMPDIR=str(scratch)),
            ))
        deadline = time.monotonic() + 180
        for process in processes:
            process.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    assert [p.returncode for p in processes] == [0, 0], "\n-----\n".join(o[-3000:] for o in outputs)
    reports = [json.loads(o.strip().splitlines()[-1]) for o in outputs]
    assert [r["workers"] for r in reports] == [2, 2]
    assert [r["worker_index"] for r in reports] == [0, 1]
    # 48 examples, global batch 8: 6 steps per epoch on each worker, in lockstep.
    assert [r["steps"] for r in reports] == [12, 12]
    # Logged values are the mean over the workers: the same on both, scalars, moving.
    logged = [{k: v for k, v in r["history"].items() if k != "examples_per_second"}
              for r in reports]
    assert logged[0] == logged[1] and {"loss", "accuracy", "val_loss"} <= set(logged[0])
    loss = reports[0]["history"]["loss"]
    assert len(loss) == 2 and np.all(np.isfinite(loss)) and loss[0] != loss[1]
    # The distributed validation covered every example once: it agrees with the
    # single-process evaluation of the whole validation set.
    assert reports[0]["validation"]["examples"] == 21
    assert reports[0]["history"]["val_accuracy"][-1] == pytest.approx(
        reports[0]["validation"]["accuracy"], abs=1e-6)
    # The same synchronized weights on both workers.
    assert reports[0]["weights_checksum"] == pytest.approx(reports[1]["weights_checksum"], rel=1e-6)
    # Exactly one checkpoint: the chief's; the other worker's scratch folder is gone.
    assert sorted(p.name for p in tmp_path.rglob("model.keras")) == ["model.keras"]
    assert (output / "model.keras").is_file()
    assert not (output / "backup").exists()
    assert not any(p.name.startswith("kerabert-worker") for p in scratch.iterdir())


def test_tpu_dataset_rules(tiny_tokenizer):
    import tensorflow as tf

    from kerabert import distribute
    from kerabert.heads.classification import SentimentHead
    from kerabert.data import pipeline

    head = SentimentHead(labels=["neg", "pos"])
    data = tiny_data(20)
    tpu_ready = pipeline.make_dataset(
        head, tiny_tokenizer, data, sequence_length=32, batch_size=8, training=True,
        seed=0, **distribute.tpu_dataset_options(),
    )
    assert distribute.check_static_dataset(tpu_ready, batch_size=8, sequence_length=32)
    features, labels = next(iter(tpu_ready))
    assert features["token_ids"].shape == (8, 32) and features["token_ids"].dtype == tf.int32
    assert labels.shape == (8,)
    # The default training pipeline (length buckets, last partial batch) breaks the rules.
    bucketed = pipeline.make_dataset(head, tiny_tokenizer, data, sequence_length=32,
                                     batch_size=8, training=True)
    with pytest.raises(ValueError, match="dynamic shape"):
        distribute.check_static_dataset(bucketed)
    strings = tf.data.Dataset.from_tensor_slices({"text": ["a", "b"]}).batch(2, drop_remainder=True)
    with pytest.raises(ValueError, match="strings cannot go to the device"):
        distribute.check_static_dataset(strings)


def test_strategy_selection_and_sharding():
    import tensorflow as tf

    from kerabert import distribute

    assert distribute.strategy_name(distribute.get_strategy("default")) == "default"
    if "TF_CONFIG" not in os.environ and not tf.config.list_logical_devices("GPU"):
        assert distribute.strategy_name(distribute.get_strategy("auto")) == "default"
    one = distribute.get_strategy("one-device")
    assert distribute.describe(one) == {"strategy": "one-device", "replicas": 1, "workers": 1,
                                        "worker_index": 0}
    with pytest.raises(ValueError, match="strategy must be one of"):
        distribute.get_strategy("horovod")
    context = tf.distribute.InputContext(num_input_pipelines=3, input_pipeline_id=1,
                                         num_replicas_in_sync=3)
    assert distribute.shard_examples({"text": list("abcdefg")}, context)["text"] == ["b", "e"]
    assert distribute.shard_examples({"text": ["a"]}, None) == {"text": ["a"]}
    assert context.get_per_replica_batch_size(24) == 8

    class ThreeReplicas:
        num_replicas_in_sync = 3

    with pytest.raises(ValueError, match="not a multiple"):
        distribute.distribute_dataset(ThreeReplicas(), lambda b, c: None, global_batch_size=8)
