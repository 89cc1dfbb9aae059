"""`kerabert quickstart`: the built-in default job, end to end on the bundled sample.

Fine-tunes a `sentiment` head on all-MiniLM-L6-v2 with the small synthetic sample that
ships with the package, evaluates it, saves it, reloads it and predicts two sentences.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources

from kerabert.cli.common import add_command, print_json


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "quickstart",
        help="fine-tune, evaluate, save and reload a sentiment model on a bundled sample "
             "(the built-in default job)",
        description="The built-in default job: fine-tune a sentiment head on "
                    "all-MiniLM-L6-v2 with the small sample that ships with kerabert "
                    "(kerabert/resources), evaluate it, save it, reload it and predict two "
                    "sentences. Standard output: the training report (one JSON line), "
                    "then one JSON line per prediction.",
    )
    parser.add_argument("--output", default="runs/quickstart", help="where to save the model")
    parser.add_argument("--backbone", default="all-minilm-l6-v2",
                        help="checkpoint folder or preset name")
    parser.add_argument("--epochs", type=int, default=2, help="passes over the sample")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kerabert.cli.quiet import keras_verbosity, stdout_to_stderr
    from kerabert.task import load_model
    from kerabert.training import train

    data = resources.files("kerabert") / "resources"
    with stdout_to_stderr():  # Keras progress; stdout is for the results
        _, report = train(
            "sentiment",
            str(data / "sentiment_train.tsv"),
            validation_data=str(data / "sentiment_dev.tsv"),
            backbone=args.backbone,
            epochs=args.epochs,
            batch_size=16,
            learning_rate=1e-4,
            output_dir=args.output,
            verbose=keras_verbosity(),
        )
    report.pop("history", None)
    print_json(report)
    model = load_model(f"{args.output}/model.keras")
    texts = ["A warm, funny and beautifully acted film.", "Two hours of tedious, lifeless noise."]
    for text, prediction in zip(texts, model.predict_examples({"text": texts})):
        print_json({"text": text, **prediction})
    print(f"saved to {args.output}/model.keras", file=sys.stderr)
    return 0
