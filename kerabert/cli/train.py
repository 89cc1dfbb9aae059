"""`kerabert train`: fine-tune a head on a backbone, evaluate, and save."""

from __future__ import annotations

from kerabert.cli.common import add_data_options, parse_key_values, print_json, read_options


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


def add_parser(subparsers):
    parser = subparsers.add_parser("train", help="fine-tune a head on a backbone")
    parser.add_argument("--train", required=True, help="training data: a file or tfds:NAME")
    parser.add_argument("--validation", help="validation data, evaluated after training")
    parser.add_argument("--output", required=True, help="folder for model.keras and metrics")
    add_training_options(parser)
    add_data_options(parser)
    parser.set_defaults(run=run)


def run(args):
    from kerabert.training import train

    _, report = train(
        args.head,
        args.train,
        backbone=args.backbone,
        validation_data=args.validation,
        sequence_length=args.sequence_length,
        batch_size=args.batch_size,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay,
        max_train_examples=args.max_train_examples,
        max_validation_examples=args.max_validation_examples,
        output_dir=args.output,
        seed=args.seed,
        read_options=read_options(args),
        jit_compile=args.jit,
        **parse_key_values(args.head_option, "--head-option"),
    )
    report.pop("history", None)
    print_json(report)
    return 0
