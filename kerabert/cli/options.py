"""The training flags `kerabert train`, `tune` and `pretrain` share, defined once.

Each flag is one entry of `FLAGS` (its argparse definition and the Python keyword it
gives); `add_fit_options(parser, names, **defaults)` adds the named ones to a command
(a command changes a default, never the definition), and `fit_keywords(args, names)`
turns them back into the keyword arguments of `kerabert.train` / `kerabert.pretrain` /
`kerabert.tuning.tune`, so the command line and the Python API stay mirrors. Defaults
come from `kerabert.config.TrainConfig`; the choices from `kerabert.config` and
`kerabert.precision` (neither imports TensorFlow, so `--help` stays fast).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from kerabert.config import LENGTH_MODES, MODES, PRECISION_OPTIONS, STRATEGIES, TrainConfig

_D = TrainConfig()


def parse_class_weight(value: str) -> Any:
    """`--class-weight`: "balanced" or "LABEL=WEIGHT,..." -> `{label: weight}`."""
    if value == "balanced":
        return value
    weights = {}
    for item in value.split(","):
        label, sep, weight = item.partition("=")
        try:
            weights[label.strip()] = float(weight)
        except ValueError:
            sep = ""
        if not sep or not label.strip():
            raise argparse.ArgumentTypeError(
                f"expected balanced or LABEL=WEIGHT,... (e.g. ABBR=3,DESC=1), got {item!r}")
    return weights


# flag -> (Python keyword, argparse keyword arguments)
FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--backbone": ("backbone", dict(default=_D.backbone,
                                    help="checkpoint folder or preset name")),
    "--sequence-length": ("sequence_length", dict(
        type=int, default=_D.sequence_length,
        help="the longest packed input in tokens, longer inputs are cut (default: the "
             "head's recipe, e.g. 128; 384 for qa)")),
    "--batch-size": ("batch_size", dict(type=int, default=_D.batch_size,
                                        help="examples per step")),
    "--epochs": ("epochs", dict(type=int, default=_D.epochs,
                                help="passes over the training data (default: the head's "
                                     "recipe)")),
    "--learning-rate": ("learning_rate", dict(type=float, default=_D.learning_rate,
                                              help="peak learning rate (default: the "
                                                   "head's recipe)")),
    "--warmup-ratio": ("warmup_ratio", dict(
        type=float, default=_D.warmup_ratio,
        help="fraction of the steps spent warming the learning rate up (default: the "
             "head's recipe)")),
    "--weight-decay": ("weight_decay", dict(
        type=float, default=_D.weight_decay,
        help="AdamW weight decay (not on biases and LayerNorm)")),
    "--max-train-examples": ("max_train_examples", dict(
        type=int, metavar="N", help="use the first N training examples")),
    "--max-validation-examples": ("max_validation_examples", dict(
        type=int, metavar="N", help="use the first N validation examples")),
    "--seed": ("seed", dict(type=int, default=_D.seed,
                            help="seed of initialization, dropout and shuffling")),
    "--deterministic": ("deterministic", dict(
        action="store_true",
        help="also make TensorFlow's ops deterministic: two runs with the same --seed "
             "end with identical weights (slower)")),
    "--jit": ("jit_compile", dict(action="store_true", help="compile training with XLA")),
    "--strategy": ("strategy", dict(
        default=_D.strategy, choices=STRATEGIES,
        help="tf.distribute strategy (default: auto: TPU, multi-worker from TF_CONFIG, "
             "several GPUs mirrored, else default)")),
    "--tpu": ("tpu", dict(help="TPU name or grpc:// address (--strategy tpu)")),
    "--precision": ("precision", dict(
        default=_D.precision, choices=PRECISION_OPTIONS,
        help="auto (bfloat16 where the hardware computes it natively, else float32), "
             "float32, or mixed precision (float16 with loss scaling)")),
    "--mode": ("mode", dict(default=_D.mode, choices=MODES,
                            help="full fine-tuning, frozen backbone (head only), or LoRA")),
    "--lora-rank": ("lora_rank", dict(type=int, default=_D.lora_rank,
                                      help="LoRA rank (--mode lora)")),
    "--layerwise-lr-decay": ("layerwise_lr_decay", dict(
        type=float, metavar="FACTOR",
        help="layer-wise learning-rate decay, e.g. 0.9 (default: off)")),
    "--clipnorm": ("clipnorm", dict(type=float, default=_D.clipnorm,
                                    help="global gradient-norm clipping (0: off)")),
    "--steps-per-epoch": ("steps_per_epoch", dict(
        type=int, help="steps per epoch (default: one pass over the data)")),
    "--length-mode": ("length_mode", dict(
        choices=LENGTH_MODES,
        help="batch padding: length groups cut to their longest row, coarse length "
             "buckets, per batch in order, or always sequence-length (static shapes, "
             "TPU) (default: group; bucket with --jit)")),
    "--steps-per-execution": ("steps_per_execution", dict(
        type=int, default=_D.steps_per_execution,
        help="training steps per compiled call (TPUs like many)")),
    "--class-weight": ("class_weight", dict(
        type=parse_class_weight, metavar="balanced|LABEL=W,...",
        help="weight each training example's loss by its class: balanced (n / (k * n_c) "
             "from the training labels) or LABEL=WEIGHT,... (others 1); single-label "
             "classification heads (default: unweighted)")),
    "--resume": ("resume", dict(action="store_true",
                                help="continue an interrupted run from OUTPUT/backup")),
}

# The flags of each command (in help order).
RUNTIME = ("--seed", "--deterministic", "--jit", "--strategy", "--tpu", "--precision")
SCHEDULE = ("--batch-size", "--epochs", "--learning-rate", "--warmup-ratio",
            "--weight-decay")
TRAIN_FLAGS = ("--backbone", "--sequence-length", *SCHEDULE, "--max-train-examples",
               "--max-validation-examples", *RUNTIME, "--mode", "--lora-rank",
               "--layerwise-lr-decay", "--clipnorm", "--steps-per-epoch", "--length-mode",
               "--steps-per-execution", "--class-weight", "--resume")
TUNE_FLAGS = ("--backbone", "--sequence-length", "--max-train-examples",
              "--max-validation-examples", *RUNTIME, "--mode")
PRETRAIN_FLAGS = ("--backbone", "--sequence-length", *SCHEDULE, *RUNTIME, "--resume")


def add_head_options(parser: argparse.ArgumentParser) -> None:
    """`--head` and `--head-option` (train, tune)."""
    parser.add_argument("--head", required=True, help="head name (see `kerabert heads`)")
    parser.add_argument("--head-option", action="append", metavar="KEY=VALUE",
                        help="a head option, e.g. labels='[\"neg\",\"pos\"]' (repeatable)")


def add_fit_options(parser: argparse.ArgumentParser, names: Iterable[str],
                    title: str = "training", **defaults: Any) -> None:
    """Add the flags `names` (keys of `FLAGS`) to `parser`, in a group `title`;
    `defaults` (by Python keyword) replace a default, `help_<keyword>` a help text."""
    group = parser.add_argument_group(title)
    for flag in names:
        keyword, options = FLAGS[flag]
        options = dict(options)
        if keyword in defaults:
            options["default"] = defaults[keyword]
        if f"help_{keyword}" in defaults:
            options["help"] = defaults[f"help_{keyword}"]
        group.add_argument(flag, dest=keyword, **options)


def fit_keywords(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The Python keyword arguments the flags `names` gave."""
    return {FLAGS[flag][0]: getattr(args, FLAGS[flag][0]) for flag in names}
