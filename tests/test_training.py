"""Optimizer rules, precision policies, callbacks/outputs, and resume after SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import numpy as np
import pytest

from tests.training_helpers import (
    run_script,
    save_tiny_checkpoint,
    script_command,
    subprocess_env,
    tiny_data,
)


@pytest.fixture
def tiny_task(tiny_backbone, tiny_tokenizer):
    from kerabert.heads.classification import SentimentHead
    from kerabert.task import build_model

    return build_model(SentimentHead(labels=["neg", "pos"]), (tiny_backbone, tiny_tokenizer),
                       sequence_length=32, compile=False)


def _zero_gradient_step(model, optimizer):
    import tensorflow as tf

    variables = model.trainable_variables
    before = {v.path: v.numpy().copy() for v in variables}
    optimizer.apply_gradients([(tf.zeros_like(v), v) for v in variables])
    return before, {v.path: v.numpy() for v in variables}


def test_weight_decay_skips_bias_and_layer_norm(tiny_task):
    from kerabert.training import make_optimizer

    optimizer = make_optimizer(learning_rate=0.1, warmup_steps=0, weight_decay=0.5)
    before, after = _zero_gradient_step(tiny_task, optimizer)
    # A zero gradient moves nothing through Adam: only weight decay acts.
    for path in before:
        if path.endswith(("/bias", "/gamma", "/beta")):
            np.testing.assert_array_equal(after[path], before[path], err_msg=path)
    kernel = "transformer_layer_0/self_attention_layer/query/kernel"
    np.testing.assert_allclose(after[kernel], before[kernel] * (1 - 0.1 * 0.5), rtol=1e-5)


def test_layerwise_learning_rate_decay(tiny_task):
    import tensorflow as tf

    from kerabert.training import make_optimizer

    optimizer = make_optimizer(learning_rate=0.01, warmup_steps=0, weight_decay=0.0,
                               layerwise_lr_decay=0.5, clipnorm=None, model=tiny_task)
    variables = tiny_task.trainable_variables
    before = {v.path: v.numpy().copy() for v in variables}
    optimizer.apply_gradients([(tf.ones_like(v), v) for v in variables])
    # Adam's first step moves each weight by about its learning rate.
    step = {v.path: float(np.abs(v.numpy() - before[v.path]).mean()) for v in variables}
    top = step["logits/kernel"]
    assert top == pytest.approx(0.01, rel=1e-2)
    assert step["pooled_dense/kernel"] == pytest.approx(top, rel=1e-3)
    layer = "transformer_layer_{}/self_attention_layer/query/kernel"
    assert step[layer.format(1)] == pytest.approx(top / 2, rel=1e-3)
    assert step[layer.format(0)] == pytest.approx(top / 4, rel=1e-3)
    assert step["token_embedding/embeddings"] == pytest.approx(top / 8, rel=1e-3)


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_model_builds_under_mixed_precision(precision, tiny_tokenizer):
    import keras

    from kerabert.precision import precision_problem_here

    problem = precision_problem_here(precision)
    if problem:  # running it would abort the whole test session
        pytest.skip(problem)

    from kerabert.heads.classification import SentimentHead
    from kerabert.task import build_model
    from kerabert.training import compile_task, precision_policy
    from tests.conftest import make_tiny_backbone

    with precision_policy(precision):
        model = build_model(SentimentHead(labels=["neg", "pos"]),
                            (make_tiny_backbone(), tiny_tokenizer), sequence_length=32,
                            compile=False)
        compile_task(model, learning_rate=1e-3, warmup_steps=0)
    assert keras.config.dtype_policy().name == "float32"  # restored
    assert model.dtype_policy.name == precision
    assert model.backbone.compute_dtype == precision.split("_")[1]
    assert model.get_layer("logits").compute_dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (
        precision == "mixed_float16")
    features, labels = next(iter(model.make_dataset(tiny_data(16), batch_size=8, training=True)))
    assert str(model.predict_on_batch(features).dtype) == "float32"
    loss = model.train_on_batch(features, labels)
    assert np.all(np.isfinite(loss))


@pytest.mark.slow
def test_train_writes_outputs_and_refuses_leftover_backup(tmp_path):
    from kerabert.training import train

    checkpoint = save_tiny_checkpoint(tmp_path / "ckpt")
    output = tmp_path / "run"
    _, report = train("sentiment", tiny_data(40), backbone=checkpoint,
                      validation_data=tiny_data(16, seed=1), sequence_length=32, batch_size=8,
                      epochs=2, learning_rate=1e-3, output_dir=output, verbose=0,
                      early_stopping_patience=5, monitor="val_accuracy")
    assert report["steps"] == 2 * 5 and report["epochs_run"] == 2
    assert len(report["history"]["examples_per_second"]) == 2
    assert {"model.keras", "best.keras", "best.json", "metrics.json", "logs"} <= {
        p.name for p in output.iterdir()}
    assert not (output / "backup").exists()  # deleted after a finished run
    assert any((output / "logs").rglob("events.out.tfevents.*"))
    assert json.loads((output / "best.json").read_text())["monitor"] == "val_accuracy"
    (output / "backup").mkdir()
    (output / "backup" / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    with pytest.raises(ValueError, match="resume"):
        train("sentiment", tiny_data(40), backbone=checkpoint, sequence_length=32,
              batch_size=8, output_dir=output, verbose=0)


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_steps_and_weights(tmp_path):
    from kerabert.training import backup_epoch

    checkpoint = save_tiny_checkpoint(tmp_path / "ckpt", dropout=0.0)
    options = {"backbone": checkpoint, "sequence_length": 32, "batch_size": 8, "epochs": 4,
               "data_size": 48, "learning_rate": 1e-3, "tensorboard": False, "dropout": 0.0}
    killed = tmp_path / "killed"
    # The uninterrupted reference run goes alongside the one to kill (2 cores).
    whole = subprocess.Popen(
        script_command({**options, "output_dir": str(tmp_path / "whole")}),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=subprocess_env())
    process = subprocess.Popen(
        script_command({**options, "output_dir": str(killed), "sleep_per_batch": 0.3}),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=subprocess_env())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if (backup_epoch(killed) or 0) >= 1:
                break
            time.sleep(0.2)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
        assert not (killed / "model.keras").exists()
        resumed = run_script({**options, "output_dir": str(killed), "resume": True},
                             env=subprocess_env())
        output, _ = whole.communicate(timeout=120)
    finally:
        for p in (process, whole):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert whole.returncode == 0
    whole = json.loads(output.strip().splitlines()[-1])
    assert resumed["resumed_from_epoch"] >= 1
    assert resumed["epochs_run"] == 4 - resumed["resumed_from_epoch"]
    assert resumed["steps"] == whole["steps"] == 4 * 6
    # The resumed run saw the same batches: it ends with (nearly) the same weights.
    assert resumed["weights_checksum"] == pytest.approx(whole["weights_checksum"], rel=1e-4)
    assert (killed / "model.keras").exists() and not (killed / "backup").exists()


def test_unset_schedule_options_take_the_heads_recipe():
    from kerabert.heads.base import Head
    from kerabert.heads.span import QuestionAnsweringHead
    from kerabert.heads.tagging import TokenClassificationHead
    from kerabert.training import recipe_for

    qa = recipe_for(QuestionAnsweringHead(), epochs=None, learning_rate=3e-5)
    assert qa == {**QuestionAnsweringHead.recipe, "learning_rate": 3e-5}
    assert qa["sequence_length"] == 384
    assert recipe_for(TokenClassificationHead())["epochs"] == TokenClassificationHead.recipe[
        "epochs"]

    class PluginHead(Head):  # a third-party head without a recipe of its own
        name = "plugin"

    assert recipe_for(PluginHead(), epochs=7) == {
        key: value for key, value in {**Head.recipe, "epochs": 7}.items()
        if key != "min_examples"}


def test_small_training_sets_get_more_epochs_unless_epochs_are_given():
    from kerabert.heads.classification import SentimentHead
    from kerabert.training import MAX_RECIPE_EPOCHS, recipe_for

    head = SentimentHead()
    assert recipe_for(head, train_examples=65_000)["epochs"] == head.recipe["epochs"]
    assert recipe_for(head, train_examples=4_907)["epochs"] == 6  # ceil(25,000 / 4,907)
    assert recipe_for(head, train_examples=10)["epochs"] == MAX_RECIPE_EPOCHS
    assert recipe_for(head, train_examples=4_907, epochs=1)["epochs"] == 1


@pytest.mark.slow
def test_saved_model_is_the_best_epoch(tmp_path):
    import keras

    from kerabert.task import load_model
    from kerabert.training import train

    checkpoint = save_tiny_checkpoint(tmp_path / "ckpt")
    output = tmp_path / "run"
    # A learning rate that wrecks the model after the first epoch: the best epoch is 1.
    seen = {}

    class Explode(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen[epoch + 1] = float(logs["val_loss"])
            if epoch == 0:
                for variable in self.model.trainable_variables:
                    variable.assign(variable * 40.0)

    model, report = train("sentiment", tiny_data(40), backbone=checkpoint,
                          validation_data=tiny_data(16, seed=1), sequence_length=32,
                          batch_size=8, epochs=3, learning_rate=1e-3, output_dir=output,
                          verbose=0, callbacks=[Explode()])
    best = min(seen, key=seen.get)
    assert best == 1 and report["saved_epoch"] == 1
    assert report["best"]["epoch"] == 1
    saved = load_model(output / "model.keras")
    for kept, returned in zip(saved.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(kept, returned)
    loss = saved.evaluate(*next(iter(saved.make_dataset(tiny_data(16, seed=1), batch_size=16,
                                                        training=False))), verbose=0)
    first_loss = loss[0] if isinstance(loss, list) else loss
    assert first_loss == pytest.approx(seen[1], rel=1e-3)


# -- crash safety and the output folder (issue 15) ---------------------------------------------
@pytest.mark.slow
def test_kills_at_random_moments_then_resume_end_like_an_uninterrupted_run(tmp_path):
    """SIGKILL the same run again and again: at random moments, while an end-of-epoch
    backup is being written, and while the final model is being saved (those writes
    are held open for a moment so the kill lands inside them); every restart resumes.
    The run that finally completes has the uninterrupted run's steps and weights."""
    import random
    import zipfile

    from kerabert.training import backup_epoch

    checkpoint = save_tiny_checkpoint(tmp_path / "ckpt", dropout=0.0)
    options = {"backbone": checkpoint, "sequence_length": 32, "batch_size": 8, "epochs": 4,
               "data_size": 48, "learning_rate": 1e-3, "tensorboard": False, "dropout": 0.0}
    killed = tmp_path / "killed"
    rng = random.Random(15)
    # Where each kill lands: after a random delay from the start of training, or a
    # random moment inside a backup's or the final save's write.
    # (A kill in the final save ends the run's training: those come last.)
    targets = ["backup", "random", "backup", "final", "final"]
    whole = subprocess.Popen(
        script_command({**options, "output_dir": str(tmp_path / "whole")}),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=subprocess_env())
    landed, process = [], None
    try:
        deadline = time.monotonic() + 300  # no new attempt after this (slow when loaded)
        for attempt, target in enumerate(targets):
            if time.monotonic() > deadline:
                break
            phases = tmp_path / f"phases-{attempt}.txt"
            process = subprocess.Popen(
                script_command({**options, "output_dir": str(killed), "resume": True,
                                "phase_file": str(phases), "slow_saves": 0.4,
                                "sleep_per_batch": 0.05}),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=subprocess_env())
            wanted = {"random": "train-begin", "backup": "backup-written",
                      "final": "final-written"}[target]
            while process.poll() is None and time.monotonic() < deadline + 60:
                seen = phases.read_text().split() if phases.exists() else []
                if wanted in seen:
                    break
                time.sleep(0.02)
            if process.poll() is not None:  # finished before the moment came
                assert process.returncode == 0
                break
            time.sleep(rng.uniform(0, 0.35 if target != "random" else 3.0))
            process.kill()
            process.wait(timeout=30)
            if process.returncode == -signal.SIGKILL:
                seen = phases.read_text().split()
                landed.append((target, seen[-1], backup_epoch(killed)))
            # Whatever the moment, what is on disk is whole: a model file is complete.
            if (killed / "model.keras").exists():
                with zipfile.ZipFile(killed / "model.keras") as archive:
                    assert archive.testzip() is None
        resumed = run_script({**options, "output_dir": str(killed), "resume": True},
                             env=subprocess_env())
        output, _ = whole.communicate(timeout=120)
    finally:
        for p in (process, whole):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert whole.returncode == 0
    whole = json.loads(output.strip().splitlines()[-1])
    # Kills landed inside a backup's write and inside the final save's write.
    assert len(landed) >= 3, landed
    assert {"backup-written", "final-written"} <= {phase for _, phase, _ in landed}, landed
    assert resumed["steps"] == whole["steps"] == 4 * 6
    assert resumed["weights_checksum"] == pytest.approx(whole["weights_checksum"], rel=1e-4)
    assert (killed / "model.keras").exists() and not (killed / "backup").exists()
    assert {p.name for p in killed.iterdir() if not p.name.startswith(".")} == {
        "model.keras", "metrics.json"}


class _Crash(Exception):
    pass


@pytest.mark.slow
def test_a_corrupt_backup_falls_back_to_the_previous_one(tmp_path):
    import keras

    from kerabert.callbacks import BACKUP_FOLDER, WEIGHTS_FILE
    from kerabert.training import backup_epoch, train

    class CrashBeforeEpoch3(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise _Crash

    checkpoint = save_tiny_checkpoint(tmp_path / "ckpt", dropout=0.0)
    options = dict(backbone=checkpoint, sequence_length=32, batch_size=8, epochs=3,
                   learning_rate=1e-3, verbose=0, tensorboard=False, dropout=0.0)
    whole, whole_report = train("sentiment", tiny_data(40), **options)
    output = tmp_path / "run"
    with pytest.raises(_Crash):
        train("sentiment", tiny_data(40), output_dir=output,
              callbacks=[CrashBeforeEpoch3()], **options)
    backups = output / BACKUP_FOLDER
    assert backup_epoch(output) == 2  # kept: the failed run can be resumed
    weights = backups / "epoch-000002" / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    weights.write_bytes(bytes(data))
    assert backup_epoch(output) == 1
    model, report = train("sentiment", tiny_data(40), output_dir=output, resume=True,
                          **options)
    assert report["resumed_from_epoch"] == 1 and report["epochs_run"] == 2
    assert report["steps"] == whole_report["steps"] == 3 * 5
    np.testing.assert_allclose(np.concatenate([w.ravel() for w in model.get_weights()]),
                               np.concatenate([w.ravel() for w in whole.get_weights()]),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_output_folder_of_another_run_is_refused_unless_overwrite(tmp_path):
    from kerabert.training import train
    from kerabert.validation import OutputDirError

    checkpoint = save_tiny_checkpoint(tmp_path / "ckpt")
    output = tmp_path / "run"
    options = dict(backbone=checkpoint, sequence_length=16, batch_size=8, epochs=1,
                   verbose=0, output_dir=output)
    train("sentiment", tiny_data(16), validation_data=tiny_data(8, seed=1), **options)
    assert (output / "best.keras").exists()
    with pytest.raises(OutputDirError, match="not empty.*--overwrite"):
        train("sentiment", tiny_data(16), **options)
    _, report = train("sentiment", tiny_data(16), overwrite=True, **options)
    # The old run's best model and its record are gone, not reported as this run's.
    assert "best" not in report and not (output / "best.keras").exists()
    assert "best" not in json.loads((output / "metrics.json").read_text())


def test_a_failed_run_leaves_no_output_folder(tmp_path):
    from kerabert.data import DataError
    from kerabert.training import train

    checkpoint = save_tiny_checkpoint(tmp_path / "ckpt")
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\nfine film\tpos\nbroken row\n")
    with pytest.raises(DataError, match="bad.tsv:3"):
        train("sentiment", str(bad), backbone=checkpoint, sequence_length=16,
              output_dir=tmp_path / "never", verbose=0)
    assert not (tmp_path / "never").exists()


@pytest.mark.slow
def test_saved_models_have_no_optimizer_state(tmp_path):
    import zipfile

    import h5py

    from kerabert.task import load_model
    from kerabert.training import train

    checkpoint = save_tiny_checkpoint(tmp_path / "ckpt")
    output = tmp_path / "run"
    model, _ = train("sentiment", tiny_data(16), validation_data=tiny_data(8, seed=1),
                     backbone=checkpoint, sequence_length=16, batch_size=8, epochs=1, verbose=0,
                     output_dir=output)
    for name in ("model.keras", "best.keras"):
        with zipfile.ZipFile(output / name) as archive:
            archive.extract("model.weights.h5", tmp_path / name)
        with h5py.File(tmp_path / name / "model.weights.h5") as weights:
            assert "optimizer" not in weights, name
    assert model.optimizer is not None and int(model.optimizer.iterations.numpy()) == 2
    reloaded = load_model(output / "model.keras")
    assert reloaded.compiled  # with a fresh optimizer
    np.testing.assert_array_equal(reloaded.get_weights()[0], model.get_weights()[0])


def test_deterministic_runs_with_the_same_seed_are_identical(tmp_path):
    """`deterministic=True`: seeds set and TensorFlow's op determinism on before the
    model is built; two runs end with identical weights and losses."""
    from tensorflow.python.framework import config as tf_config

    from kerabert.config import TrainConfig
    from kerabert.training import train

    checkpoint = save_tiny_checkpoint(tmp_path / "ckpt")  # dropout 0.1: seeded too
    config = TrainConfig(backbone=checkpoint, sequence_length=32, batch_size=8, epochs=2,
                         learning_rate=1e-3, seed=3, verbose=0, deterministic=True)
    was_enabled = tf_config.is_op_determinism_enabled()
    try:
        runs = [train("sentiment", tiny_data(40), config,
                      validation_data=tiny_data(16, seed=1)) for _ in range(2)]
        assert tf_config.is_op_determinism_enabled()
    finally:
        if not was_enabled:
            tf_config.disable_op_determinism()
    (first, report), (second, again) = runs
    assert report["deterministic"] is True
    assert report["history"]["loss"] == again["history"]["loss"]
    assert report["history"]["val_loss"] == again["history"]["val_loss"]
    for a, b in zip(first.get_weights(), second.get_weights()):
        assert np.array_equal(a, b)


def test_train_takes_a_config_and_keyword_overrides():
    import dataclasses

    from kerabert.config import TrainConfig

    config = TrainConfig(epochs=3, batch_size=16)
    merged, head_options = TrainConfig.split(config, {"epochs": 1, "dropout": 0.0})
    assert (merged.epochs, merged.batch_size, head_options) == (1, 16, {"dropout": 0.0})
    assert config.epochs == 3  # not changed in place
    assert dataclasses.fields(TrainConfig)[0].name == "batch_size"
    with pytest.raises(TypeError, match="TrainConfig"):
        TrainConfig.split({"epochs": 1})
