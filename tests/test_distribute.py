"""Strategies and distributed datasets: real MirroredStrategy (2 logical CPUs) and a
real 2-process MultiWorkerMirroredStrategy run on 127.0.0.1, plus TPU dataset rules."""

from __future__ import annotations

import json
import os
import signal
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

# Exports, document runs and multi-process tests: minutes on 2 cores.
pytestmark = pytest.mark.slow


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


def _start_workers(options, log_dir, name, scratch):
    """Two worker processes of one MultiWorkerMirroredStrategy cluster on 127.0.0.1
    (new free ports), logging to `log_dir/{name}{index}.log`; non-chief scratch folders
    go to `scratch`."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    processes, logs = [], []
    try:
        for index in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            log = open(log_dir / f"{name}{index}.log", "w+")
            logs.append(log)
            processes.append(subprocess.Popen(
                script_command(options), stdout=log, stderr=subprocess.STDOUT,
                env=subprocess_env(TF_CONFIG=tf_config, TMPDIR=str(scratch)),
            ))
    except BaseException:
        _kill(processes)
        raise
    return processes, logs


def _kill(processes):
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait(processes, timeout):
    """Wait for the processes to end; past the timeout, kill them (the return codes
    then say -9, and the logs are shown by `_reports`)."""
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            process.wait(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _kill(processes)


def _read_logs(logs):
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    return outputs


def _reports(processes, outputs):
    """The workers' reports (last output line), after checking both exited with 0."""
    codes = [p.returncode for p in processes]
    assert codes == [0, 0], f"return codes {codes} (-9: killed, timed out)\n" + "\n-----\n".join(
        o[-3000:] for o in outputs)
    return [json.loads(o.strip().splitlines()[-1]) for o in outputs]


def test_multi_worker_two_processes_write_one_checkpoint(tiny_checkpoint, tmp_path):
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
    processes, logs = _start_workers(options, tmp_path, "worker", scratch)
    try:
        _wait(processes, timeout=180)
    finally:
        _kill(processes)
    reports = _reports(processes, _read_logs(logs))
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


def test_multi_worker_resume_after_sigkill(tiny_checkpoint, tmp_path):
    """Two workers killed (SIGKILL) after the chief backed up an epoch, then restarted
    with `resume=True`: they end with the steps and weights of an uninterrupted run."""
    epochs = 4
    options = {
        "strategy": "multi-worker",
        "backbone": tiny_checkpoint,
        "sequence_length": 32,
        "batch_size": 8,
        "epochs": epochs,
        "data_size": 48,
        "learning_rate": 1e-3,
        "dropout": 0.0,
        "tensorboard": False,
    }
    steps = epochs * 6  # 48 examples, global batch 8 (4 per worker)
    from kerabert.training import backup_epoch  # None while absent or half written

    killed = tmp_path / "killed"
    scratch = {name: tmp_path / f"scratch-{name}" for name in ("whole", "killed", "resumed")}
    for folder in scratch.values():
        folder.mkdir()
    started = []  # every process, killed in `finally` if still running
    logs = {}
    try:
        # The uninterrupted reference cluster runs alongside the one to kill.
        whole, logs["whole"] = _start_workers(
            {**options, "output_dir": str(tmp_path / "whole")}, tmp_path, "whole",
            scratch["whole"])
        started += whole
        doomed, logs["killed"] = _start_workers(
            {**options, "output_dir": str(killed), "sleep_per_batch": 0.3}, tmp_path,
            "killed", scratch["killed"])
        started += doomed
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and all(p.poll() is None for p in doomed):
            if (backup_epoch(killed) or 0) >= 1:
                break
            time.sleep(0.2)
        assert all(p.poll() is None for p in doomed), (
            "a worker ended before it could be killed:\n"
            + "\n-----\n".join(o[-3000:] for o in _read_logs(logs.pop("killed"))))
        for process in doomed:
            process.send_signal(signal.SIGKILL)
        for process in doomed:
            process.wait(timeout=30)
        assert [p.returncode for p in doomed] == [-signal.SIGKILL] * 2
        assert not (killed / "model.keras").exists()
        assert (killed / "backup").is_dir()
        resumed, logs["resumed"] = _start_workers(
            {**options, "output_dir": str(killed), "resume": True}, tmp_path, "resumed",
            scratch["resumed"])
        started += resumed
        _wait(resumed + whole, timeout=240)
    finally:
        _kill(started)
    outputs = {name: _read_logs(files) for name, files in logs.items()}
    resumed_reports = _reports(resumed, outputs["resumed"])
    whole_reports = _reports(whole, outputs["whole"])
    assert [r["worker_index"] for r in resumed_reports] == [0, 1]
    first = resumed_reports[0]["resumed_from_epoch"]
    assert first >= 1
    for report in resumed_reports:
        assert report["resumed_from_epoch"] == first
        assert report["epochs_run"] == epochs - first
        assert report["steps"] == steps
    assert [r["steps"] for r in whole_reports] == [steps, steps]
    # Both workers hold the same synchronized weights, and those of the uninterrupted
    # run: the resumed cluster restored the same state on every worker and saw the
    # same batches.
    checksums = [r["weights_checksum"] for r in resumed_reports + whole_reports]
    assert checksums == pytest.approx([checksums[-1]] * 4, rel=1e-4)
    # One final checkpoint (the chief's), the backup gone, no scratch folder left.
    assert sorted(p.relative_to(killed).as_posix() for p in killed.rglob("model.keras")) == [
        "model.keras"]
    assert not (killed / "backup").exists()
    assert not any(p.name.startswith("kerabert-worker") for p in scratch["resumed"].iterdir())


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
