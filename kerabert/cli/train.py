"""`kerabert train`: fine-tune a head on a backbone, evaluate, and save."""

from __future__ import annotations

import argparse

from kerabert.cli.common import (
    add_command,
    add_data_options,
    label_names,
    parse_key_values,
    print_json,
    read_options,
)

# Kept in sync with kerabert.distribute / training / finetuning (importing them here
# would load TensorFlow just to print --help).
STRATEGIES = ("auto", "default", "one-device", "mirrored", "multi-worker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
MODES = ("full", "frozen", "lora")


# Options whose unset value (None, or "auto" for precision) leaves `kerabert.train`'s
# own default in charge (the head's recipe), whatever that default is.
TRAIN_DEFAULTS = {"epochs": None, "learning_rate": None, "warmup_ratio": None,
                  "precision": "auto"}


def training_keywords(args: argparse.Namespace) -> dict:
    """The `kerabert.train` keyword arguments the shared training options give."""
    keywords = dict(
        backbone=args.backbone,
        sequence_length=args.sequence_length,
        batch_size=args.batch_size,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay,
        max_train_examples=args.max_train_examples,
        max_validation_examples=args.max_validation_examples,
        seed=args.seed,
        jit_compile=args.jit,
        strategy=args.strategy,
        tpu=args.tpu,
        precision=args.precision,
        mode=args.mode,
        lora_rank=args.lora_rank,
        layerwise_lr_decay=args.layerwise_lr_decay,
        clipnorm=args.clipnorm,
        steps_per_epoch=args.steps_per_epoch,
        length_mode=args.length_mode,
        steps_per_execution=args.steps_per_execution,
        deterministic=args.deterministic,
    )
    for key, unset in TRAIN_DEFAULTS.items():
        if keywords[key] == unset:
            del keywords[key]
    return keywords


def head_keywords(args: argparse.Namespace) -> dict:
    """Head options from `--head-option` and `--label-names[-file]`."""
    options = parse_key_values(args.head_option, "--head-option")
    names = label_names(args.label_names, args.label_names_file)
    if names:
        options["label_names"] = names
    return options


def add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--head", required=True, help="head name (see `kerabert heads`)")
    parser.add_argument("--head-option", action="append", metavar="KEY=VALUE",
                        help="a head option, e.g. labels='[\"neg\",\"pos\"]' (repeatable)")
    parser.add_argument("--label-names", metavar="VALUE=NAME,...",
                        help="names for the data's label values, e.g. "
                             "0=negative,1=positive (kept in the model; predictions and "
                             "exports give the names)")
    parser.add_argument("--label-names-file", metavar="FILE",
                        help="label names, one VALUE=NAME per line (or one NAME per line "
                             "for values 0, 1, ...)")
    parser.add_argument("--backbone", default="all-minilm-l6-v2",
                        help="checkpoint folder or preset name")
    parser.add_argument("--sequence-length", type=int, default=128,
                        help="the longest packed input in tokens (longer inputs are cut)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step")
    parser.add_argument("--epochs", type=int, default=None,
                        help="passes over the training data (default: the head's recipe)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="peak learning rate (default: the head's recipe)")
    parser.add_argument("--warmup-ratio", type=float, default=None,
                        help="fraction of the steps spent warming the learning rate up "
                             "(default: the head's recipe)")
    parser.add_argument("--weight-decay", type=float, default=0.01,
                        help="AdamW weight decay (not on biases and LayerNorm)")
    parser.add_argument("--max-train-examples", type=int, metavar="N",
                        help="use the first N training examples")
    parser.add_argument("--max-validation-examples", type=int, metavar="N",
                        help="use the first N validation examples")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of initialization, dropout and shuffling")
    parser.add_argument("--jit", action="store_true", help="compile training with XLA")
    parser.add_argument("--strategy", default="auto", choices=STRATEGIES,
                        help="tf.distribute strategy (default: auto: TPU, multi-worker "
                             "from TF_CONFIG, several GPUs mirrored, else default)")
    parser.add_argument("--tpu", help="TPU name or grpc:// address (--strategy tpu)")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="auto (bfloat16 where the CPU has native bfloat16, else "
                             "float32), float32, or mixed precision (float16 with loss "
                             "scaling)")
    parser.add_argument("--mode", default="full", choices=MODES,
                        help="full fine-tuning, frozen backbone (head only), or LoRA")
    parser.add_argument("--lora-rank", type=int, default=8, help="LoRA rank (--mode lora)")
    parser.add_argument("--layerwise-lr-decay", type=float, metavar="FACTOR",
                        help="layer-wise learning-rate decay, e.g. 0.9 (default: off)")
    parser.add_argument("--clipnorm", type=float, default=1.0,
                        help="global gradient-norm clipping (0: off)")
    parser.add_argument("--steps-per-epoch", type=int,
                        help="steps per epoch (default: one pass over the data)")
    parser.add_argument("--length-mode", choices=("bucket", "dynamic", "fixed"),
                        help="batch padding: length buckets, per batch, or always "
                             "sequence-length (static shapes, TPU) (default: the "
                             "training default)")
    parser.add_argument("--steps-per-execution", type=int, default=1,
                        help="training steps per compiled call (TPUs like many)")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic TensorFlow ops (reproducible, slower)")


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "train", help="fine-tune a head on a backbone, evaluate and save it",
        description="Fine-tune a head on a pretrained backbone, evaluate it on the "
                    "validation data and save it to OUTPUT (model.keras, metrics.json, "
                    "curves.png, TensorBoard logs in logs/).\n\n"
                    "Progress goes to standard error (a progress bar on a terminal, one "
                    "line per epoch otherwise); the final report is one JSON line on "
                    "standard output:\n"
                    "  kerabert train ... | tail -1 | python -m json.tool",
    )
    parser.add_argument("--train", required=True, help="training data: a file or tfds:NAME")
    parser.add_argument("--validation",
                        help="validation data: its loss and metrics are computed after "
                             "every epoch (early stopping, best.keras), and the head's "
                             "metrics on it after training")
    parser.add_argument("--output", required=True,
                        help="folder for model.keras, metrics.json and curves.png")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from OUTPUT/backup")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the files of an earlier run in OUTPUT")
    parser.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                        help="stop after PATIENCE epochs without validation improvement")
    parser.add_argument("--monitor", default="val_loss",
                        help="validation value for early stopping and best.keras "
                             "(val_loss, val_accuracy, ...)")
    parser.add_argument("--no-tensorboard", action="store_true",
                        help="do not write TensorBoard logs to OUTPUT/logs")
    add_training_options(parser)
    add_data_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kerabert.cli.quiet import keras_verbosity, stdout_to_stderr
    from kerabert.reports.plots import plot_curves
    from kerabert.training import train

    with stdout_to_stderr():  # Keras progress and banners; stdout is for the report
        _, report = train(
            args.head,
            args.train,
            validation_data=args.validation,
            output_dir=args.output,
            read_options=read_options(args),
            resume=args.resume,
            overwrite=args.overwrite,
            early_stopping_patience=args.early_stopping,
            monitor=args.monitor,
            tensorboard=not args.no_tensorboard,
            verbose=keras_verbosity(),
            **training_keywords(args),
            **head_keywords(args),
        )
    history = report.pop("history", None)
    if history:
        report["curves"] = str(plot_curves(history, Path(args.output) / "curves.png"))
    print_json(report)
    return 0
