"""Domain-adaptive pretraining: continue BERT's masked-LM (and next-sentence) training
on a domain's unlabelled text, then fine-tune task heads from the adapted backbone.

`pretrain(corpus, backbone=..., output_dir=...)` streams a plain-text corpus
(`kerabert.data.corpus.Corpus`), trains the `masked-lm` head with dynamic masking,
measures masked-token accuracy and perplexity on held-out documents before and after,
and writes the adapted backbone as a keras-hub preset folder (`save_backbone`) that
`kerabert.load_backbone(DIR)`, `kerabert train --backbone DIR` and every head read.
The trained MLM head is kept beside it (`masked_lm_head.safetensors`), so pretraining
can continue from the folder later.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras
import tensorflow as tf

from kerabert.data.corpus import Corpus, corpus_error
from kerabert.heads.masked_lm import MaskedLMHead

REPORT_FILE = "pretraining.json"
SHUFFLE_BUFFER = 4096  # packed rows mixed in memory (~2 MB at length 128)


def corpus_rows(corpus, head, tokenizer, sequence_length, part, *, shuffle_files=False,
                seed=None):
    """The raw training rows of `corpus` for `head`: packed ids, or sentence pairs."""
    if head.next_sentence:
        return corpus.sentence_pairs(part, seed=seed)
    return corpus.packed(tokenizer, sequence_length, part, shuffle_files=shuffle_files,
                         seed=seed)


def count_rows(dataset):
    """Elements in a finite dataset (one streamed pass)."""
    try:
        return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))
    except tf.errors.InvalidArgumentError as e:
        raise corpus_error(e) from None


def evaluate_masked_lm(model, dataset):
    """Masked-token accuracy, perplexity (and NSP accuracy) of `model` on `dataset`."""
    results = model.evaluate(dataset, return_dict=True, verbose=0)
    names = {"accuracy": "masked_token_accuracy", "mlm_accuracy": "masked_token_accuracy",
             "mlm_perplexity": "perplexity", "mlm_loss": "masked_lm_loss"}
    return {names.get(name, name): round(float(value), 4) for name, value in results.items()}


def pretrain(corpus, *, backbone="all-minilm-l6-v2", output_dir=None, sequence_length=128,
             batch_size=32, epochs=1, max_steps=None, learning_rate=5e-5, warmup_ratio=0.1,
             weight_decay=0.01, documents="blank_line", holdout=0.05, eval_corpus=None,
             max_eval_sequences=1000, mask_selection_rate=0.15, whole_word=False,
             next_sentence=False, head_warmup_steps=0, head_learning_rate=1e-3,
             skip_bad=False, seed=0, jit_compile=False, verbose="auto", callbacks=(),
             log=print):
    """Continue masked-LM (and next-sentence) pretraining of a backbone on plain text.

    Args:
        corpus: a `Corpus`, or its files/folders (read with `documents`, `holdout`,
            `skip_bad`).
        backbone: a `load_backbone` spec, or a `(backbone, tokenizer)` pair.
        output_dir: where to write the adapted backbone (a keras-hub preset folder),
            its MLM head and `pretraining.json`; nothing is written when None.
        sequence_length, batch_size, epochs, learning_rate, warmup_ratio, weight_decay:
            the schedule (AdamW, linear warmup then decay).
        max_steps: stop after this many steps (the corpus repeats as needed) instead of
            after `epochs` passes.
        documents: `"blank_line"` or `"file"` (see `Corpus`).
        holdout: the fraction of documents held out for the before/after evaluation.
        eval_corpus: a separate corpus to evaluate on instead of the held-out part.
        max_eval_sequences: evaluate on at most this many held-out rows.
        mask_selection_rate: the fraction of tokens (or words) to predict.
        whole_word: mask whole words.
        next_sentence: train next-sentence prediction too (on sentence pairs).
        head_warmup_steps: first train the head alone, on the frozen backbone, for this
            many steps (at `head_learning_rate`): a newly initialised head otherwise
            sends noise into the pretrained encoder during its first steps.
        head_learning_rate: the peak learning rate of the head warmup.
        skip_bad: skip corpus lines that are not valid UTF-8 (and count them).
        seed: the seed of initialization, masking and shuffling (held-out masks, and so
            the before/after figures, are the same on every run with the same seed).
        jit_compile: compile steps with XLA.
        verbose: Keras `fit` verbosity.
        callbacks: extra Keras callbacks.
        log: where progress sentences go (`print`; None for silence).

    Returns:
        `(model, report)`: the trained `Task` and a dict of what was measured.

    Example:
    ```python
    model, report = kerabert.pretraining.pretrain(
        "domain_texts/", backbone="all-minilm-l6-v2", output_dir="adapted", epochs=1)
    kerabert.train("text-classification", "train.tsv", backbone="adapted")
    ```
    """
    from kerabert.task import Task, resolve_backbone
    from kerabert.training import ThroughputLogger, compile_task

    log = log or (lambda *_: None)
    keras.utils.set_random_seed(seed)
    if not isinstance(corpus, Corpus):
        corpus = Corpus(corpus, documents=documents, holdout=0.0 if eval_corpus else holdout,
                        skip_bad=skip_bad)
    statistics = corpus.statistics()
    log(f"corpus: {statistics}")
    head = MaskedLMHead(mask_selection_rate=mask_selection_rate, whole_word=whole_word,
                        next_sentence=next_sentence)
    backbone_model, tokenizer = resolve_backbone(backbone)
    model = Task(backbone_model, head, tokenizer, sequence_length)
    if isinstance(backbone, tuple):
        initialisation = "the backbone was given as objects: the MLM head is newly initialised"
    else:
        initialisation = head.load_checkpoint_weights(model, backbone)
    log(initialisation)

    train_part = "all" if corpus.holdout == 0 else "train"
    train_rows = None
    if max_steps is None:  # an epoch's length is known only after one streamed pass
        train_rows = count_rows(corpus_rows(corpus, head, tokenizer, sequence_length, train_part))
        if train_rows == 0:
            raise ValueError(f"the corpus has no training text ({statistics})")
    total_steps = max_steps or math.ceil(train_rows / batch_size) * epochs
    compile_task(model, jit_compile=jit_compile, learning_rate=learning_rate,
                 total_steps=total_steps, warmup_ratio=warmup_ratio, weight_decay=weight_decay)

    evaluation = None
    if eval_corpus is not None or corpus.holdout > 0:
        held = Corpus(eval_corpus, documents=corpus.documents, skip_bad=corpus.skip_bad) \
            if eval_corpus is not None else corpus
        held_part = "all" if eval_corpus is not None else "holdout"
        rows = corpus_rows(held, head, tokenizer, sequence_length, held_part, seed=seed)
        rows = rows.take(max_eval_sequences)
        # Masked in order (reproducible from `seed`) and cached after the first pass:
        # before and after see the very same masks.
        evaluation = model.make_dataset(rows, batch_size=batch_size, training=False,
                                        parallel=False).cache()

    report = {
        "backbone": backbone if isinstance(backbone, str) else type(backbone_model).__name__,
        "corpus": statistics,
        "head_initialisation": initialisation,
        "objectives": ["masked-lm"] + (["next-sentence"] if next_sentence else []),
        "whole_word": whole_word,
        "sequence_length": sequence_length,
        "train_rows": train_rows,
        "batch_size": batch_size,
        "steps": total_steps,
        "learning_rate": learning_rate,
    }
    if evaluation is not None:
        report["before"] = evaluate_masked_lm(model, evaluation)
        report["eval_rows"] = count_rows(evaluation.unbatch())
        log(f"held-out before: {report['before']}")

    train_raw = corpus_rows(corpus, head, tokenizer, sequence_length, train_part,
                            shuffle_files=True, seed=seed)
    train_raw = train_raw.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    dataset = model.make_dataset(
        train_raw, batch_size=batch_size, training=True, shuffle=False,
        repeat=max_steps is not None, seed=seed,
        # Packed rows all have the full length: no bucketing to do.
        length_mode="bucket" if next_sentence else "dynamic",
    )
    fit_options = {"epochs": epochs}
    if max_steps is not None:
        fit_options = {"epochs": 1, "steps_per_epoch": max_steps}
    started = time.perf_counter()
    if head_warmup_steps:
        report["head_warmup"] = _warm_up_head(
            model, train_raw, evaluation, head_warmup_steps, head_learning_rate,
            batch_size=batch_size, warmup_ratio=warmup_ratio, weight_decay=weight_decay,
            jit_compile=jit_compile, verbose=verbose, seed=seed,
            length_mode="bucket" if next_sentence else "dynamic",
        )
        log(f"after head warmup: {report['head_warmup']}")
        compile_task(model, jit_compile=jit_compile, learning_rate=learning_rate,
                     total_steps=total_steps, warmup_ratio=warmup_ratio,
                     weight_decay=weight_decay)
    history = model.fit(dataset, callbacks=[ThroughputLogger(batch_size), *callbacks],
                        verbose=verbose, **fit_options)
    seconds = time.perf_counter() - started
    report["train_seconds"] = round(seconds, 1)
    report["train_rows_per_second"] = round(
        (total_steps + head_warmup_steps) * batch_size / seconds, 2)
    report["history"] = {k: [float(x) for x in v] for k, v in history.history.items()}
    if evaluation is not None:
        report["after"] = evaluate_masked_lm(model, evaluation)
        log(f"held-out after: {report['after']}")
    if output_dir is not None:
        save_pretrained(model, report, output_dir)
        report["output"] = str(output_dir)
        log(f"adapted backbone written to {output_dir}")
    return model, report


def _warm_up_head(model, train_raw, evaluation, steps, learning_rate, *, batch_size,
                  warmup_ratio, weight_decay, jit_compile, verbose, seed, length_mode):
    """Train only the head (the backbone frozen) for `steps`; held-out metrics after."""
    from kerabert.training import compile_task

    model.backbone.trainable = False
    try:
        compile_task(model, jit_compile=jit_compile, learning_rate=learning_rate,
                     total_steps=steps, warmup_ratio=warmup_ratio, weight_decay=weight_decay)
        dataset = model.make_dataset(train_raw, batch_size=batch_size, training=True,
                                     shuffle=False, repeat=True, seed=seed,
                                     length_mode=length_mode)
        started = time.perf_counter()
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=verbose)
        result = {"steps": steps, "learning_rate": learning_rate,
                  "seconds": round(time.perf_counter() - started, 1)}
    finally:
        model.backbone.trainable = True
    if evaluation is not None:
        result["held_out"] = evaluate_masked_lm(model, evaluation)
    return result


def save_pretrained(model, report, output_dir):
    """Write the backbone preset, the MLM head and the report into `output_dir`."""
    from kerabert.backbone import save_backbone

    output_dir = Path(output_dir)
    save_backbone(model.backbone, model.tokenizer, output_dir)
    model.head.save_head_weights(model, output_dir)
    with open(output_dir / REPORT_FILE, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    return output_dir
