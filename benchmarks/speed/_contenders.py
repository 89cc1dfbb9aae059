"""Training contenders for train_throughput.py, each driven step by step from stdin.

A worker process builds one contender, trains `--warmup` steps, then answers each
`run` line on stdin with the time of the next `--steps` training steps (a JSON line
starting with `@@ `), and `quit` with its peak RSS. Keras contenders train inside one
real `model.fit` call (a callback blocks between rounds), PyTorch in a plain loop.
"""

from __future__ import annotations

import random
import sys
import time

from _util import (BATCH_SIZE, say, LEARNING_RATE, WEIGHT_DECAY, checkpoint_folder, peak_rss_gb,
                   sst2_sentences)


class Rounds:
    """Blocks between rounds of `steps` steps; reports each round's wall time."""

    def __init__(self, warmup, steps):
        self.warmup, self.steps = warmup, steps
        self.done = 0
        self.started = None

    def wait(self):
        command = sys.stdin.readline().strip()
        if command != "run":
            say(peak_rss_gb=peak_rss_gb())
            sys.exit(0)
        self.started = time.perf_counter()

    def step_done(self):
        """Call after each finished step (results materialized). Returns False to stop."""
        self.done += 1
        if self.done == self.warmup:
            say(ready=True)
            self.wait()
        elif self.done > self.warmup and (self.done - self.warmup) % self.steps == 0:
            say(seconds=time.perf_counter() - self.started, steps=self.steps)
            self.wait()


def keras_callback(rounds):
    import keras

    class Callback(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # wait for the step's result
            rounds.step_done()

    return Callback()


def run_kerabert(rounds, fixed, precision="float32", jit_compile=False):
    import kerabert
    from kerabert.training import compile_task, make_optimizer, precision_policy

    texts, labels = sst2_sentences()
    examples = {"text": texts, "label": labels}
    with precision_policy(precision):
        backbone = kerabert.load_backbone("all-minilm-l6-v2", dtype=precision)
        model = kerabert.build_model("sentiment", backbone, labels=["0", "1"], compile=False)
    # A constant rate (no warmup or decay), as in the other contenders.
    compile_task(model, optimizer=make_optimizer(LEARNING_RATE, warmup_steps=0,
                                                 weight_decay=WEIGHT_DECAY),
                 jit_compile=jit_compile)
    dataset = model.make_dataset(examples, batch_size=BATCH_SIZE, training=True, seed=0,
                                 repeat=True, length_mode="fixed" if fixed else None)
    model.fit(dataset, steps_per_epoch=10**6, epochs=1, verbose=0,
              callbacks=[keras_callback(rounds)])


def run_keras_hub(rounds, fixed):
    import keras
    import keras_hub
    import tensorflow as tf

    texts, labels = sst2_sentences()
    folder = str(checkpoint_folder())
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        folder, sequence_length=128)
    model = keras_hub.models.BertTextClassifier.from_preset(
        folder, num_classes=2, preprocessor=preprocessor)
    optimizer = keras.optimizers.AdamW(LEARNING_RATE, weight_decay=WEIGHT_DECAY, epsilon=1e-6,
                                       global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["sparse_categorical_accuracy"])
    # Raw strings in: keras-hub's fit maps its preprocessor over the batches (in
    # parallel, prefetched), padding every batch to the preprocessor's length.
    dataset = (tf.data.Dataset.from_tensor_slices((texts, [int(x) for x in labels]))
               .shuffle(len(texts), seed=0).repeat().batch(BATCH_SIZE))
    model.fit(dataset, steps_per_epoch=10**6, epochs=1, verbose=0,
              callbacks=[keras_callback(rounds)])


def run_torch(rounds, fixed, bf16=False):
    import contextlib

    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    texts, labels = sst2_sentences()
    folder = checkpoint_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = BertForSequenceClassification.from_pretrained(folder, num_labels=2)
    model.train()
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
         "weight_decay": WEIGHT_DECAY},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
         "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=LEARNING_RATE, eps=1e-6)
    order = list(range(len(texts)))
    random.Random(0).shuffle(order)
    padding = "max_length" if fixed else "longest"  # "longest": dynamic padding
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else \
        contextlib.nullcontext
    position = 0
    while True:
        if position + BATCH_SIZE > len(order):
            position = 0
        index = order[position:position + BATCH_SIZE]
        position += BATCH_SIZE
        batch = tokenizer([texts[i] for i in index], padding=padding, truncation=True,
                          max_length=128, return_tensors="pt")
        target = torch.tensor([int(labels[i]) for i in index])
        with autocast():
            loss = model(**batch, labels=target).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        float(loss)
        rounds.step_done()


CONTENDERS = {
    "pytorch": lambda r, fixed: run_torch(r, fixed),
    "pytorch-bf16": lambda r, fixed: run_torch(r, fixed, bf16=True),
    "pytorch passive openmp": lambda r, fixed: run_torch(r, fixed),
    "keras-hub": run_keras_hub,
    "kerabert": lambda r, fixed: run_kerabert(r, fixed),
    "kerabert-xla": lambda r, fixed: run_kerabert(r, fixed, jit_compile=True),
    "kerabert-bf16": lambda r, fixed: run_kerabert(r, fixed, precision="mixed_bfloat16"),
    "kerabert-bf16-xla": lambda r, fixed: run_kerabert(r, fixed, precision="mixed_bfloat16",
                                                      jit_compile=True),
}
