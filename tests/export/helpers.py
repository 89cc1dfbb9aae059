"""Tiny task models shared by the export tests."""

from __future__ import annotations

import keras

from tests.conftest import TINY_VOCABULARY, make_tiny_backbone

SENTENCES = ["a good film", "the plot was boring and dull", "john smith is in paris !",
             "ámélie , a brilliant film"]


def tiny_task(head, sequence_length=32, seed=0):
    from kerabert.task import Task
    from kerabert.tokenizer import BertTokenizer

    keras.utils.set_random_seed(seed)
    return Task(make_tiny_backbone(), head, BertTokenizer(TINY_VOCABULARY, lowercase=True),
                sequence_length)


def tiny_sentiment():
    from kerabert.heads.classification import SentimentHead

    return tiny_task(SentimentHead(labels=["negative", "positive"]))
