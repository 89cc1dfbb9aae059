"""Helpers of the training tests: a tiny checkpoint folder, tiny data, and a training
script run in subprocesses (logical devices and TF_CONFIG must be set before
TensorFlow starts, and SIGKILL needs a process of its own).

Run as a script: `python tests/training_helpers.py '<json options>'` trains with
`kerabert.train(**options)` and prints the report as the last line of output.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
WORDS = "good bad film movie great awful fine dull brilliant boring fun".split()


def tiny_data(n=64, seed=0):
    """Sentences of 3-20 tiny-vocabulary words labelled by a word-count rule."""
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 20))) for _ in range(n)]
    labels = [
        "pos" if t.count("good") + t.count("great") >= t.count("bad") + t.count("awful")
        else "neg"
        for t in texts
    ]
    return {"text": texts, "label": labels}


def save_tiny_checkpoint(folder, dropout=0.1, seed=0):
    """A 2-layer, hidden-32 BERT saved as a keras-hub preset folder (what
    `load_backbone` reads, with any dtype policy)."""
    import keras

    sys.path.insert(0, str(TESTS))
    from conftest import TINY_VOCABULARY

    from kerabert.backbone import save_backbone
    from kerabert.testing import tiny_backbone, tiny_tokenizer

    keras.utils.set_random_seed(seed)
    backbone = tiny_backbone(len(TINY_VOCABULARY), 64, dropout=dropout,
                             hidden_activation="gelu")
    save_backbone(backbone, tiny_tokenizer(vocabulary=TINY_VOCABULARY), folder)
    return str(folder)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def script_command(options):
    return [sys.executable, str(Path(__file__).resolve()), json.dumps(options)]


def run_script(options, timeout=240, env=None):
    """Run the training script; return its report (the last output line)."""
    done = subprocess.run(script_command(options), capture_output=True, text=True,
                          timeout=timeout, env=env)
    if done.returncode != 0:
        raise AssertionError(f"training script failed ({done.returncode}):\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def subprocess_env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def _phases(phase_file, slow_saves):
    """Log the run's phases to `phase_file` (one line each, for a test that kills at a
    chosen moment) and hold every write of the backup and of the final model for
    `slow_saves` seconds after its file is written, before it is committed (renamed),
    so that a kill can land inside those windows."""
    import keras

    def mark(phase):
        with open(phase_file, "a", encoding="utf-8") as f:
            f.write(phase + "\n")

    def slowed(method, phase):
        def wrapper(self, *args, **kwargs):
            mark(f"{phase}-start")
            result = method(self, *args, **kwargs)
            mark(f"{phase}-written")
            time.sleep(slow_saves)
            return result
        return wrapper

    keras.Model.save_weights = slowed(keras.Model.save_weights, "backup")
    keras.Model.save = slowed(keras.Model.save, "final")

    class Phases(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            mark("train-begin")

    return Phases()


def main(options):
    # Options the training API has no use for: test-only set-up.
    logical_cpus = options.pop("logical_cpus", 0)
    compare_strategies = options.pop("compare_strategies", None)
    sleep_per_batch = options.pop("sleep_per_batch", 0.0)
    data_size = options.pop("data_size", 64)
    phase_file = options.pop("phase_file", None)
    slow_saves = options.pop("slow_saves", 0.0)
    import tensorflow as tf

    if logical_cpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
    import keras

    from kerabert.training import train

    callbacks = []
    if sleep_per_batch:
        class Slow(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                time.sleep(sleep_per_batch)

        callbacks.append(Slow())
    if phase_file:
        callbacks.append(_phases(phase_file, slow_saves))
    data = tiny_data(data_size)
    if compare_strategies:
        out = {}
        for name in compare_strategies:
            _, report = train("sentiment", data, strategy=name, verbose=0, **options)
            out[name] = {"loss": report["history"]["loss"], "replicas": report["replicas"],
                         "steps": report["steps"]}
        print(json.dumps(out))
        return
    model, report = train("sentiment", data, callbacks=callbacks, verbose=2, **options)
    report["weights_checksum"] = float(sum(float(abs(w).sum()) for w in model.get_weights()))
    print(json.dumps(report))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
