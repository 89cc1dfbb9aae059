"""`kerabert train`: fine-tune a head on a backbone, evaluate, and save."""

from __future__ import annotations

from kerabert.cli.common import add_data_options, parse_key_values, print_json, read_options

# Kept in sync with kerabert.distribute / training / finetuning (importing them here
# would load TensorFlow just to print --help).
STRATEGIES = ("auto", "default", "one-device", "mirrored", "multi-worker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
MODES = ("full", "frozen", "lora")


def training_keywords(args):
    """The `kerabert.train` keyword arguments the shared training options give."""
    return dict(
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


def add_training_options(parser):
    parser.add_argument("--head", required=True, help="head name (see `kerabert heads`)")
    parser.add_argument("--head-option", action="append", metavar="KEY=VALUE",
                        help="a head option, e.g. labels='[\"neg\",\"pos\"]' (repeatable)")
    parser.add_argument("--backbone", default="all-minilm-l6-v2",
                        help="checkpoint folder or preset name (default: all-minilm-l6-v2)")
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--max-train-examples", type=int, help="use the first N examples")
    parser.add_argument("--max-validation-examples", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jit", action="store_true", help="compile training with XLA")
    parser.add_argument("--strategy", default="auto", choices=STRATEGIES,
                        help="tf.distribute strategy (default: auto: TPU, multi-worker "
                             "from TF_CONFIG, several GPUs mirrored, else default)")
    parser.add_argument("--tpu", help="TPU name or grpc:// address (--strategy tpu)")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS,
                        help="float32, or mixed precision (float16 with loss scaling)")
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
                        help="batch padding: length buckets (default), per batch, or "
                             "always sequence-length (static shapes, TPU)")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic TensorFlow ops (reproducible, slower)")


def add_parser(subparsers):
    parser = subparsers.add_parser("train", help="fine-tune a head on a backbone")
    parser.add_argument("--train", required=True, help="training data: a file or tfds:NAME")
    parser.add_argument("--validation", help="validation data, evaluated after training")
    parser.add_argument("--output", required=True, help="folder for model.keras and metrics")
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


def run(args):
    from kerabert.training import train

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
        **training_keywords(args),
        **parse_key_values(args.head_option, "--head-option"),
    )
    report.pop("history", None)
    print_json(report)
    return 0
