"""The `train` workflow behind `kerabert train`: fine-tune a head, evaluate, save.

`train` loads and adapts the head's data, fills the schedule from the head's recipe,
builds the task model and prepares its examples; the fit itself (strategy, precision,
optimizer and schedule, callbacks, resume, the fit call, saving) is the fit core's
(`kerabert.fitting.FitRun`), which `kerabert.pretraining.pretrain` and every
`kerabert.tuning.tune` trial use too. Its options are a `kerabert.config.TrainConfig`.

The names below the workflow are re-exported from their owners, for code that imports
them from here: the optimizer and schedule (`kerabert.optim`), the precision policy
(`kerabert.precision`), the callbacks and saving (`kerabert.callbacks`), the data
stream (`kerabert.data.pipeline`).
"""

from __future__ import annotations

import math
from typing import Any

from kerabert.callbacks import (  # noqa: F401  (re-exported)
    BestCheckpoint,
    BestWeights,
    ThroughputLogger,
    backup_epoch,
    restore_best,
    save_trained,
)
from kerabert.config import TrainConfig
from kerabert.data.pipeline import shuffled_stream, with_known_cardinality  # noqa: F401
from kerabert.fitting import FitRun
from kerabert.heads.base import Head
from kerabert.optim import (  # noqa: F401  (re-exported)
    NO_DECAY,
    LayerwiseAdamW,
    WarmupLinearDecay,
    compile_task,
    layerwise_multipliers,
    make_optimizer,
)
from kerabert.precision import PRECISIONS, precision_policy  # noqa: F401
from kerabert.validation import checked_training

# Training options a head's `recipe` gives when the caller leaves them unset (None).
RECIPE_KEYS = ("epochs", "learning_rate", "warmup_ratio", "sequence_length")
# A recipe's `min_examples` raises its epochs on small training sets up to this many.
MAX_RECIPE_EPOCHS = 10


@checked_training  # options merged into the config and checked first; --output rules
def train(head: str | Head, train_data: Any, config: TrainConfig | None = None, *,
          validation_data: Any = None, overwrite: bool = False,
          **options: Any) -> tuple[Any, dict[str, Any]]:
    """Fine-tune a head on a backbone, evaluate it, and save it.

    Training runs on an endless, seeded stream of batches cut into epochs of
    `steps_per_epoch` steps (by default one pass over the data), so epochs are exact
    and a resumed run sees the same batches as an uninterrupted one.

    The options are a `kerabert.config.TrainConfig` (`config`) and/or its fields as
    keywords (`epochs=1`, which override the config's); keywords that are no field are
    options of a named head. The fit itself (strategy, precision, optimizer, callbacks,
    resume, report) is `kerabert.fitting.FitRun`'s, shared with `pretrain` and `tune`.

    Args:
        head: a head name or `Head` instance.
        train_data: a file path, `tfds:NAME[:SPLIT]`, or `Examples` columns.
        config: a `TrainConfig` (default: its defaults).
        overwrite: replace the files of an earlier run in `output_dir`.
        backbone: a `load_backbone` spec or `(backbone, tokenizer)`.
        validation_data: like `train_data`; validated after each epoch (Keras loss and
            metrics, for early stopping and the best checkpoint) and scored with the
            head's own metrics after training. With it, the returned and saved model
            is the best epoch's (by `monitor`), not the last one's.
        sequence_length, epochs, learning_rate, warmup_ratio, weight_decay: the
            training schedule; `None` takes the head's `recipe` value.
        batch_size: the global batch size (split over the strategy's replicas).
        max_train_examples, max_validation_examples: use the first N examples.
        output_dir: where to save `model.keras`, `metrics.json`, `best.keras` (best
            validation model), `logs/` (TensorBoard) and `backup/` (while running).
        seed: the seed of initialization, dropout and shuffling.
        read_options: options of the head's file reader (columns, format, ...).
        callbacks: extra Keras callbacks.
        jit_compile: compile the training step with XLA.
        verbose: Keras `fit` verbosity.
        strategy: a `kerabert.distribute.STRATEGIES` name or a `tf.distribute.Strategy`.
        precision: `"auto"` (bfloat16 where the hardware computes it natively, else
            float32: `kerabert.precision.auto_precision`), `"float32"`,
            `"mixed_float16"` (with dynamic loss scaling) or `"mixed_bfloat16"`.
        mode: `"full"`, `"frozen"` (head only) or `"lora"` (see `kerabert.finetuning`).
        lora_rank: the LoRA rank (mode `"lora"`).
        resume: continue an interrupted run from `output_dir/backup` (written at the
            end of every epoch). Without it, a leftover backup is an error.
        early_stopping_patience: stop after this many epochs without improvement of
            `monitor` (and keep the best weights); None: off.
        monitor: the validation value for early stopping and `best.keras`
            (`"val_loss"`, `"val_accuracy"`, ...).
        save_best: write `best.keras` when there is validation data and `output_dir`.
        tensorboard: write TensorBoard logs to `output_dir/logs`.
        layerwise_lr_decay: layer-wise learning-rate decay factor (e.g. 0.9); None: off.
        clipnorm: global gradient-norm clipping (None or 0: off).
        steps_per_epoch: steps per epoch (default: one pass over the training data).
        length_mode: the pipeline's length mode (default `"group"`: batches of
            nearly equal lengths cut to their longest row; with `jit_compile`
            `"bucket"`, a few shapes each compiled once; TPUs use "fixed").
        steps_per_execution: training steps per compiled call (TPUs like many).
        deterministic: make TensorFlow ops deterministic (slower): two runs with the
            same seed end with identical weights and losses (docs/training.md).
        tpu: the TPU address for `strategy="tpu"`/`"auto"`.
        sparse_updates: update only the word-embedding rows each batch uses (lazy
            Adam; `kerabert.optim.AdamW`); False: every row every step.
        class_weight: weight each training example's loss by its class (single-label
            classification): `"balanced"` or `{label: weight}`
            (`kerabert.data.class_weights`); validation stays unweighted.
        **options: `TrainConfig` fields, and options of a named head.

    Returns:
        `(model, report)`: the trained `Task` and a dict of what was measured.

    Example:
    ```python
    model, report = kerabert.train("sentiment", "train.tsv", validation_data="dev.tsv",
                                   read_options={"text_column": "sentence"},
                                   mode="lora", precision="mixed_bfloat16",
                                   output_dir="runs/sst2", resume=True)
    ```
    """
    from kerabert import distribute, finetuning
    from kerabert.backbone import is_backbone_spec, resolve_backbone
    from kerabert.data import class_weights, load_examples, pipeline
    from kerabert.task import Task, resolve_head

    config, head_options = TrainConfig.split(config, options)
    backbone = config.backbone
    built_precision = None
    if not is_backbone_spec(backbone):  # built: keep its policy
        built_precision = resolve_backbone(backbone)[0].dtype_policy.name
    head = resolve_head(head, **head_options)
    batch_size = config.batch_size
    read_options = config.read_options or {}
    # Seeds, strategy, precision and the output folder first (as before any data).
    run = FitRun(config, built_precision=built_precision)
    train_examples = load_examples(head, train_data, **read_options).head(
        config.max_train_examples)
    recipe = recipe_for(head, train_examples=len(train_examples), epochs=config.epochs,
                        learning_rate=config.learning_rate,
                        warmup_ratio=config.warmup_ratio,
                        sequence_length=config.sequence_length)
    epochs, sequence_length = recipe["epochs"], recipe["sequence_length"]
    head.adapt(train_examples)
    weights = class_weights.resolve(head, config.class_weight, train_examples)
    validation_examples = None
    if validation_data is not None:
        validation_examples = load_examples(head, validation_data, **read_options).head(
            config.max_validation_examples
        )

    with run.scope():
        backbone_model, tokenizer = resolve_backbone(backbone, precision=run.precision)
        model = Task(backbone_model, head, tokenizer, sequence_length)
        finetuning.apply_mode(model, config.mode, lora_rank=config.lora_rank)
        train_examples, rows = head.prepare_examples(
            train_examples, model.tokenizer, sequence_length,
            skip_bad=bool(read_options.get("skip_bad")))
        steps_per_epoch = config.steps_per_epoch or pipeline.steps_per_epoch(rows, batch_size)
        run.compile(model, total_steps=steps_per_epoch * epochs,
                    learning_rate=recipe["learning_rate"], warmup_ratio=recipe["warmup_ratio"])
    parameters = finetuning.parameter_counts(model)
    strategy = run.strategy
    if config.verbose:
        print(f"kerabert: {distribute.describe(strategy)['strategy']} strategy, "
              f"{strategy.num_replicas_in_sync} replica(s), {run.precision}, mode "
              f"{config.mode}; {finetuning.format_parameter_counts(model)}")

    data_options = distribute.tpu_dataset_options() if run.tpu else {}
    if config.length_mode is not None:
        data_options["length_mode"] = config.length_mode
    elif config.jit_compile:
        data_options.setdefault("length_mode", "bucket")  # bounded shapes: few compiles

    def dataset_fn(per_replica_batch, context):
        dataset = model.make_dataset(
            pipeline.shuffled_stream(distribute.shard_examples(train_examples, context),
                                     head.fields + head.target_fields, config.seed),
            batch_size=per_replica_batch, training=True, shuffle=False, **data_options,
        )
        return dataset if weights is None else class_weights.weighted(dataset, weights)

    validation_dataset = None
    if validation_examples is not None:
        validation_dataset = pipeline.with_known_cardinality(model.make_dataset(
            validation_examples, batch_size=batch_size, training=False,
            **({"length_mode": "fixed", "drop_remainder": True} if run.tpu else {}),
        ))

    result = run.fit(model, dataset_fn, epochs=epochs, steps_per_epoch=steps_per_epoch,
                     validation_data=validation_dataset)
    fitted = run.report(model, result, epochs=epochs, steps_per_epoch=steps_per_epoch)
    report = {
        "head": head.name,
        **distribute.describe(strategy),
        "precision": run.precision,
        "recipe": recipe,
        "jit_compile": run.jit_compile,
        "mode": config.mode,
        **({"lora_rank": config.lora_rank} if config.mode == "lora" else {}),
        "trainable_parameters": parameters["trainable"],
        "total_parameters": parameters["total"],
        "train_examples": len(train_examples),
        "skipped_train_rows": getattr(train_examples, "skipped", 0),  # --skip-bad
        "skipped_validation_rows": getattr(validation_examples, "skipped", 0),
        **{k: fitted[k] for k in ("epochs", "resumed_from_epoch", "epochs_run", "steps",
                                  "steps_per_epoch", "batch_size")},
        "sequence_length": sequence_length,
        **({"class_weight": weights} if weights else {}),
        **fitted,
    }
    if validation_examples is not None:
        import time

        started = time.perf_counter()
        report["validation"] = model.evaluate_examples(validation_examples, batch_size=64)
        report["validation_seconds"] = round(time.perf_counter() - started, 1)
    run.finish(lambda folder: save_trained(model, report, folder))
    return model, report


def recipe_for(head, train_examples=None, **given):
    """The training schedule: each of `RECIPE_KEYS` as given, or the head's `recipe`
    value where it is None.

    When `epochs` is left unset and the training set is small, the recipe's epochs
    rise until the model sees at least `recipe["min_examples"]` examples (at most
    `MAX_RECIPE_EPOCHS`): a few thousand examples need more passes than sixty thousand
    (TREC, 4.9k questions: 0.938 dev accuracy after 2 epochs, 0.954 with 6).

    Args:
        head: the head, whose `recipe` gives the defaults.
        train_examples: the number of training examples, if known.
        **given: the caller's values of `RECIPE_KEYS`; None takes the recipe's.

    Example:
    ```python
    recipe_for(kerabert.heads.get("qa")(), epochs=1)["sequence_length"]  # 384
    recipe_for(kerabert.heads.get("sentiment")(), train_examples=5000)["epochs"]  # 5
    ```
    """
    recipe = {**Head.recipe, **head.recipe}  # a head may override only some keys
    chosen = {key: recipe[key] if given.get(key) is None else given[key]
              for key in RECIPE_KEYS}
    if given.get("epochs") is None and train_examples and recipe.get("min_examples"):
        needed = math.ceil(recipe["min_examples"] / train_examples)
        chosen["epochs"] = max(chosen["epochs"], min(needed, MAX_RECIPE_EPOCHS))
    return chosen
