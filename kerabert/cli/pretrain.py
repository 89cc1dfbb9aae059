"""`kerabert pretrain`: continue masked-LM (and next-sentence) pretraining on plain text.

    kerabert pretrain --corpus texts/ --backbone all-minilm-l6-v2 --output adapted/
    kerabert train --head text-classification --train train.tsv --backbone adapted/ ...
"""

from __future__ import annotations

import argparse
import sys

from kerabert.cli.common import UserError, add_command, print_json
from kerabert.cli.options import PRETRAIN_FLAGS, add_fit_options, fit_keywords


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "pretrain",
        help="continue masked-LM pretraining of a backbone on unlabelled text",
        description="Continue BERT's masked-LM (and optionally next-sentence) pretraining "
                    "on plain-text files, report held-out masked-token accuracy and "
                    "perplexity before and after, and write the adapted backbone to a "
                    "folder that `kerabert train --backbone DIR` reads.",
    )
    parser.add_argument("--corpus", required=True, nargs="+", metavar="PATH",
                        help="text files and/or folders (read recursively)")
    parser.add_argument("--output", required=True, help="folder for the adapted backbone")
    parser.add_argument("--documents", choices=("blank_line", "file"), default="blank_line",
                        help="documents are separated by blank lines, or one per file")
    parser.add_argument("--holdout", type=float, default=0.05,
                        help="fraction of documents held out for evaluation")
    parser.add_argument("--eval-corpus", nargs="+", metavar="PATH",
                        help="evaluate on these files instead of a held-out part")
    parser.add_argument("--max-eval-sequences", type=int, default=1000,
                        help="evaluate on at most this many sequences")
    parser.add_argument("--max-steps", type=int, help="stop after N steps instead of epochs")
    parser.add_argument("--mask-rate", type=float, default=0.15,
                        help="fraction of tokens (or words) to predict")
    parser.add_argument("--whole-word", action="store_true", help="mask whole words")
    parser.add_argument("--next-sentence", action="store_true",
                        help="also train next-sentence prediction (on sentence pairs)")
    parser.add_argument("--head-warmup-steps", type=int, default=0,
                        help="first train a new MLM head alone on the frozen backbone for N "
                             "steps (recommended when the checkpoint has no MLM head)")
    parser.add_argument("--head-learning-rate", type=float, default=1e-3,
                        help="peak learning rate of the head warmup")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip (and count) lines that are not valid UTF-8")
    add_fit_options(
        parser, PRETRAIN_FLAGS, epochs=1, learning_rate=5e-5, warmup_ratio=0.1,
        sequence_length=128,
        precision="float32",
        help_sequence_length="tokens per training sequence",
        help_batch_size="sequences per step",
        help_epochs="passes over the corpus",
        help_learning_rate="peak learning rate",
        help_warmup_ratio="fraction of the steps spent warming the learning rate up",
        help_seed="seed of initialization, masking and shuffling")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kerabert.cli.quiet import keras_verbosity, stdout_to_stderr
    from kerabert.pretraining import pretrain

    if not 0.0 <= args.holdout < 1.0:
        raise UserError(f"--holdout must be in [0, 1), got {args.holdout}")
    if not 0.0 < args.mask_rate < 1.0:
        raise UserError(f"--mask-rate must be in (0, 1), got {args.mask_rate}")
    with stdout_to_stderr():  # Keras progress; stdout is for the report
        _, report = pretrain(
            args.corpus,
            output_dir=args.output,
            max_steps=args.max_steps,
            documents=args.documents,
            holdout=args.holdout,
            eval_corpus=args.eval_corpus,
            max_eval_sequences=args.max_eval_sequences,
            mask_selection_rate=args.mask_rate,
            whole_word=args.whole_word,
            next_sentence=args.next_sentence,
            head_warmup_steps=args.head_warmup_steps,
            head_learning_rate=args.head_learning_rate,
            skip_bad=args.skip_bad,
            verbose=keras_verbosity(),
            **fit_keywords(args, PRETRAIN_FLAGS),
            log=lambda message: print(message, file=sys.stderr),
        )
    report.pop("history", None)
    print_json(report)
    return 0
