"""Training contenders for train_throughput.py, each driven pass by pass from stdin.

A worker process builds one contender and trains one warm-up pass over the workload
(a fixed, shuffled set of SST-2 sentences: every contender sees the same sentences
and so the same mix of lengths), then answers each `run` line on stdin with the wall
time of its next whole pass (a JSON line starting with `@@ `), and `quit` with its peak
RSS. Keras contenders train inside one real `fit` call (a callback blocks between
epochs; kerabert's through `kerabert.train` itself), PyTorch in a plain loop.
"""

from __future__ import annotations

import sys
import time

from _util import BATCH_SIZE, LEARNING_RATE, WEIGHT_DECAY, checkpoint_folder, peak_rss_gb, say


class PassRounds:
    """Rounds of whole passes over the workload: blocks at each pass's end until the
    parent says `run`, then times the next pass (no per-step synchronisation)."""

    def __init__(self, examples):
        self.examples = examples
        self.started = None

    def pass_done(self, first):
        if first:
            say(ready=True)
        else:
            say(seconds=time.perf_counter() - self.started, examples=self.examples)
        command = sys.stdin.readline().strip()
        if command != "run":
            say(peak_rss_gb=peak_rss_gb())
            sys.exit(0)
        self.started = time.perf_counter()


def keras_pass_callback(rounds):
    import keras

    class Callback(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            rounds.pass_done(first=epoch == 0)

    return Callback()


def run_kerabert(rounds, workload, fixed, **options):
    """Exactly `kerabert.train`'s path (its defaults unless `options` say otherwise):
    one epoch per pass over the workload; the first pass warms up (tracing)."""
    import kerabert

    texts, labels = workload
    if fixed:
        options.setdefault("length_mode", "fixed")
    kerabert.train("sentiment", {"text": texts, "label": labels}, labels=["0", "1"],
                   epochs=10**4, learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY,
                   sequence_length=128, batch_size=BATCH_SIZE, verbose=0, tensorboard=False,
                   callbacks=[keras_pass_callback(rounds)], **options)


def run_keras_hub(rounds, workload, fixed):
    import keras
    import keras_hub
    import tensorflow as tf

    texts, labels = workload
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
               .shuffle(len(texts), seed=0).batch(BATCH_SIZE))
    model.fit(dataset, epochs=10**4, verbose=0, callbacks=[keras_pass_callback(rounds)])


def run_torch(rounds, workload, fixed, bf16=False, fused=False, grouping=None,
              compile=False):
    """Hugging Face `BertForSequenceClassification` trained as a speed-minded user does:
    the data tokenized once up front (`datasets.map` style), each batch padded to its
    longest row by the collator; optionally bf16 autocast, `AdamW(fused=True)`, length
    grouping (`"hf"`: Trainer's `group_by_length` sampler; `"kerabert"`: kerabert's own
    fine buckets) and `torch.compile`."""
    import contextlib

    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification
    from transformers.trainer_pt_utils import get_length_grouped_indices

    texts, labels = workload
    folder = checkpoint_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = tokenizer(texts, truncation=True, max_length=128)["input_ids"]
    lengths = [len(ids) for ids in encoded]
    targets = torch.tensor([int(x) for x in labels])
    model = BertForSequenceClassification.from_pretrained(folder, num_labels=2)
    model.train()
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
         "weight_decay": WEIGHT_DECAY},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
         "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=LEARNING_RATE, eps=1e-6,
                                  **({"fused": True} if fused else {}))
    forward = torch.compile(model) if compile else model
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else \
        contextlib.nullcontext
    generator = torch.Generator().manual_seed(0)

    def batches():
        if grouping == "hf":
            order = get_length_grouped_indices(lengths, BATCH_SIZE, generator=generator)
        elif grouping == "kerabert":
            order = kerabert_bucket_order(lengths, generator)
        else:
            order = torch.randperm(len(lengths), generator=generator).tolist()
        for start in range(0, len(order), BATCH_SIZE):
            yield order[start:start + BATCH_SIZE]

    def collate(index):
        width = 128 if fixed else max(lengths[i] for i in index)
        ids = torch.zeros((len(index), width), dtype=torch.long)
        mask = torch.zeros((len(index), width), dtype=torch.long)
        for row, i in enumerate(index):
            ids[row, :lengths[i]] = torch.tensor(encoded[i])
            mask[row, :lengths[i]] = 1
        return ids, mask

    first = True
    while True:
        for index in batches():
            ids, mask = collate(index)
            with autocast():
                loss = forward(input_ids=ids, attention_mask=mask, labels=targets[index]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        float(loss)  # the pass is finished once its last step is
        rounds.pass_done(first)
        first = False


def kerabert_bucket_order(lengths, generator):
    """Batches as kerabert's "group" mode forms them: a random order, each example
    dealt to the bucket of its length, a batch out whenever a bucket is full (the
    partial buckets at the end of a pass go out last)."""
    import torch

    from kerabert.data.pipeline import group_boundaries

    bounds = group_boundaries(128)
    buckets, order = {}, []
    for i in torch.randperm(len(lengths), generator=generator).tolist():
        key = next(b for b in bounds if lengths[i] <= b)
        bucket = buckets.setdefault(key, [])
        bucket.append(i)
        if len(bucket) == BATCH_SIZE:
            order.extend(bucket)
            buckets[key] = []
    for bucket in buckets.values():
        order.extend(bucket)
    return order


# What `kerabert train` does by default on this machine is the "kerabert" row; the
# fastest PyTorch set-up found is "pytorch-best" (see docs/benchmarks/speed.md).
CONTENDERS = {
    "kerabert": lambda r, w, fixed: run_kerabert(r, w, fixed),
    "kerabert-float32": lambda r, w, fixed: run_kerabert(r, w, fixed, precision="float32"),
    "kerabert-bf16": lambda r, w, fixed: run_kerabert(r, w, fixed, precision="mixed_bfloat16"),
    "kerabert-coarse-buckets": lambda r, w, fixed: run_kerabert(r, w, fixed,
                                                                length_mode="bucket"),
    "kerabert-dense-adamw": lambda r, w, fixed: run_kerabert(r, w, fixed,
                                                             sparse_updates=False),
    "kerabert-xla": lambda r, w, fixed: run_kerabert(r, w, fixed, jit_compile=True),
    # TF_ENABLE_ONEDNN_OPTS=0 (set by _util.torch_env from the name): TensorFlow's own
    # default on CPUs without AVX-512 VNNI.
    "kerabert-onednn-off": lambda r, w, fixed: run_kerabert(r, w, fixed),
    "pytorch": lambda r, w, fixed: run_torch(r, w, fixed),
    "pytorch-fused": lambda r, w, fixed: run_torch(r, w, fixed, fused=True),
    "pytorch-grouped": lambda r, w, fixed: run_torch(r, w, fixed, grouping="hf"),
    "pytorch-fused-grouped": lambda r, w, fixed: run_torch(r, w, fixed, fused=True,
                                                           grouping="hf"),
    "pytorch-fused-kerabert-buckets": lambda r, w, fixed: run_torch(
        r, w, fixed, fused=True, grouping="kerabert"),
    "pytorch-bf16-fused-grouped": lambda r, w, fixed: run_torch(r, w, fixed, bf16=True,
                                                                fused=True, grouping="hf"),
    "pytorch-fused-grouped-compile": lambda r, w, fixed: run_torch(
        r, w, fixed, fused=True, grouping="hf", compile=True),
    "keras-hub": lambda r, w, fixed: run_keras_hub(r, w, fixed),
}
