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
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import tensorflow as tf

from kerabert.config import FitConfig
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


def pretrain(corpus: Any, *, backbone: Any = "all-minilm-l6-v2",
             output_dir: str | os.PathLike | None = None, sequence_length: int = 128,
             batch_size: int = 32, epochs: int = 1, max_steps: int | None = None,
             learning_rate: float = 5e-5, warmup_ratio: float = 0.1,
             weight_decay: float = 0.01, documents: str = "blank_line",
             holdout: float = 0.05, eval_corpus: Any = None, max_eval_sequences: int = 1000,
             mask_selection_rate: float = 0.15, whole_word: bool = False,
             next_sentence: bool = False, head_warmup_steps: int = 0,
             head_learning_rate: float = 1e-3, skip_bad: bool = False, seed: int = 0,
             jit_compile: bool = False, verbose: Any = "auto", callbacks: Sequence[Any] = (),
             log: Callable[[str], Any] | None = print, strategy: Any = "auto",
             tpu: str | None = None, precision: str = "float32", resume: bool = False,
             deterministic: bool = False) -> tuple[Any, dict[str, Any]]:
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
        strategy: a `kerabert.config.STRATEGIES` name or a `tf.distribute.Strategy`
            (the corpus rows are sharded over multi-worker input pipelines).
        tpu: the TPU address for `strategy="tpu"`/`"auto"`.
        precision: `"float32"` (the default), `"auto"`, `"mixed_float16"` or
            `"mixed_bfloat16"`, as in `kerabert.train`.
        resume: continue an interrupted run from `output_dir/backup` (written at the
            end of every epoch; `max_steps` runs are one epoch); without it a leftover
            backup is an error. A resumed run skips the head warmup (the backup holds
            its result) and the batches the finished epochs used.
        deterministic: make TensorFlow's ops deterministic (slower).
        verbose: Keras `fit` verbosity.
        callbacks: extra Keras callbacks.
        log: where progress sentences go (`print`; None for silence).

    Training runs through the fit core (`kerabert.fitting.FitRun`), as `kerabert.train`
    does: an endless stream of batches cut into epochs of `ceil(rows / batch_size)` steps
    (or one epoch of `max_steps`).

    Returns:
        `(model, report)`: the trained `Task` and a dict of what was measured.

    Example:
    ```python
    model, report = kerabert.pretraining.pretrain(
        "domain_texts/", backbone="all-minilm-l6-v2", output_dir="adapted", epochs=1)
    kerabert.train("text-classification", "train.tsv", backbone="adapted")
    ```
    """
    from kerabert.backbone import is_backbone_spec, resolve_backbone
    from kerabert.distribute import shard_examples
    from kerabert.fitting import FitRun
    from kerabert.task import Task

    log = log or (lambda *_: None)
    config = FitConfig(
        batch_size=batch_size, epochs=epochs, learning_rate=learning_rate,
        warmup_ratio=warmup_ratio, weight_decay=weight_decay, jit_compile=jit_compile,
        seed=seed, deterministic=deterministic, strategy=strategy, tpu=tpu,
        precision=precision, output_dir=output_dir, resume=resume,
        tensorboard=False,  # the output folder is a backbone preset: no logs in it
        save_best=False, callbacks=tuple(callbacks), verbose=verbose,
    )
    built_precision = None
    if not is_backbone_spec(backbone):
        built_precision = resolve_backbone(backbone)[0].dtype_policy.name
    run = FitRun(config, built_precision=built_precision)  # seeds, strategy, precision
    if not isinstance(corpus, Corpus):
        corpus = Corpus(corpus, documents=documents, holdout=0.0 if eval_corpus else holdout,
                        skip_bad=skip_bad)
    statistics = corpus.statistics()
    log(f"corpus: {statistics}")
    head = MaskedLMHead(mask_selection_rate=mask_selection_rate, whole_word=whole_word,
                        next_sentence=next_sentence)
    with run.scope():
        backbone_model, tokenizer = resolve_backbone(backbone, precision=run.precision)
        model = Task(backbone_model, head, tokenizer, sequence_length)
        if isinstance(backbone, tuple):
            initialisation = ("the backbone was given as objects: the MLM head is newly "
                              "initialised")
        else:
            initialisation = head.load_checkpoint_weights(model, backbone)
    log(initialisation)

    train_part = "all" if corpus.holdout == 0 else "train"
    train_rows = None
    if max_steps is None:  # an epoch's length is known only after one streamed pass
        train_rows = count_rows(corpus_rows(corpus, head, tokenizer, sequence_length, train_part))
        if train_rows == 0:
            raise ValueError(f"the corpus has no training text ({statistics})")
        fit_epochs, steps_per_epoch = epochs, math.ceil(train_rows / batch_size)
    else:
        fit_epochs, steps_per_epoch = 1, max_steps
    total_steps = fit_epochs * steps_per_epoch

    def compile_main():
        with run.scope():
            run.compile(model, total_steps=total_steps, learning_rate=learning_rate,
                        warmup_ratio=warmup_ratio)

    compile_main()
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
    # Packed rows all have the full length: no bucketing to do.
    length_mode = "bucket" if next_sentence else "dynamic"

    def dataset_fn(per_replica_batch, context):
        # An endless stream, mixed in a buffer (`pipeline.shuffle_stream`); each input
        # pipeline of a multi-worker run reads its own shard of the rows.
        return model.make_dataset(
            shard_examples(train_raw, context), batch_size=per_replica_batch,
            training=True, shuffle=True, shuffle_buffer=SHUFFLE_BUFFER, repeat=True,
            seed=seed, length_mode=length_mode)

    started = time.perf_counter()
    if head_warmup_steps and run.initial_epoch:
        report["head_warmup"] = {"steps": head_warmup_steps, "learning_rate":
                                 head_learning_rate, "skipped": "resumed from a backup"}
    elif head_warmup_steps:
        report["head_warmup"] = _warm_up_head(
            model, train_raw, evaluation, head_warmup_steps, head_learning_rate,
            batch_size=batch_size, warmup_ratio=warmup_ratio, weight_decay=weight_decay,
            jit_compile=jit_compile, verbose=verbose, seed=seed, length_mode=length_mode,
            run=run)
        log(f"after head warmup: {report['head_warmup']}")
        compile_main()
    result = run.fit(model, dataset_fn, epochs=fit_epochs, steps_per_epoch=steps_per_epoch)
    seconds = time.perf_counter() - started
    fitted = run.report(model, result, epochs=fit_epochs, steps_per_epoch=steps_per_epoch)
    for key in ("strategy", "replicas", "workers", "precision", "resumed_from_epoch",
                "epochs_run", "deterministic"):
        if key in fitted:
            report[key] = fitted[key]
    report["train_seconds"] = round(seconds, 1)
    report["train_rows_per_second"] = round(
        (total_steps + head_warmup_steps) * batch_size / seconds, 2)
    report["history"] = result.history
    if evaluation is not None:
        report["after"] = evaluate_masked_lm(model, evaluation)
        log(f"held-out after: {report['after']}")
    if output_dir is not None:
        run.finish(lambda folder: save_pretrained(model, report, folder))
        report["output"] = str(output_dir)
        log(f"adapted backbone written to {output_dir}")
    return model, report


def _warm_up_head(model, train_raw, evaluation, steps, learning_rate, *, batch_size,
                  warmup_ratio, weight_decay, jit_compile, verbose, seed, length_mode,
                  run=None):
    """Train only the head (the backbone frozen) for `steps`, through the fit core
    (`run`, by default one on the model's own policy and the default strategy) but
    without backups or resume; held-out metrics after."""
    from kerabert.distribute import shard_examples
    from kerabert.fitting import FitRun

    if run is None:
        run = FitRun(FitConfig(batch_size=batch_size, weight_decay=weight_decay,
                               jit_compile=jit_compile, seed=seed, strategy="default",
                               tensorboard=False, save_best=False, verbose=verbose),
                     built_precision=model.backbone.dtype_policy.name)

    def dataset_fn(per_replica_batch, context):
        return model.make_dataset(
            shard_examples(train_raw, context), batch_size=per_replica_batch,
            training=True, shuffle=True, shuffle_buffer=SHUFFLE_BUFFER, repeat=True,
            seed=seed, length_mode=length_mode)

    model.backbone.trainable = False
    try:
        with run.scope():
            run.compile(model, total_steps=steps, learning_rate=learning_rate,
                        warmup_ratio=warmup_ratio, weight_decay=weight_decay,
                        layerwise=False)
        started = time.perf_counter()
        run.fit(model, dataset_fn, epochs=1, steps_per_epoch=steps, batch_size=batch_size,
                callbacks=[], backup=False, verbose=verbose)
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
