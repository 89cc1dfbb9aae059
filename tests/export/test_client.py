"""The ONNX client's pure-Python tokenizer matches the in-graph one."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kerabert.export.client import WordPieceClient
from kerabert.tokenizer import pack_inputs

TRICKY = [
    "A good film.", "Ámélie GOOD films, in Paris!", "naïveté  ﬁlm", "", "   ",
    "john\tsmith\nparis\x85berlin", "soft\u00adhyphen zero\u200bwidth", "ß straße",
    "東京 film 映画", "it's (not) a \"fun\" film -- really?!", "filmsing filmed actorly",
    "x" * 150 + " film", "μ and µ ², ½ ⁽good⁾", "\ufffd bad \x00 ok",
]


def _client(tokenizer, sequence_length=16, fields=("text",)):
    return WordPieceClient(tokenizer.vocabulary, lowercase=tokenizer.lowercase,
                           max_bytes_per_word=tokenizer.max_bytes_per_word,
                           sequence_length=sequence_length, fields=fields)


def test_tokens_match_the_in_graph_tokenizer(tiny_tokenizer):
    client = _client(tiny_tokenizer)
    expected = tiny_tokenizer(tf.constant(TRICKY)).to_list()
    assert [client.tokenize(text) for text in TRICKY] == expected
    assert any(tiny_tokenizer.unknown_id in row for row in expected)  # the test sees [UNK]


def test_pairs_pack_and_truncate_like_pack_inputs(tiny_tokenizer):
    client = _client(tiny_tokenizer, sequence_length=12, fields=("question", "context"))
    first = ["what film ?", "a good film and a great film and a fine film", ""]
    second = ["the film is good and the plot is fun and the actors are great", "bad", "fun"]
    segments = [tiny_tokenizer(tf.constant(first)), tiny_tokenizer(tf.constant(second))]
    expected = pack_inputs(segments, 12, cls_id=tiny_tokenizer.cls_id,
                           sep_id=tiny_tokenizer.sep_id, pad_id=tiny_tokenizer.pad_id)
    got = client.encode(question=first, context=second, pad_to_sequence_length=True)
    for name in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(got[name], expected[name].numpy())
    shortest = client.encode(question=first, context=second)
    assert shortest["token_ids"].shape[1] == int(expected["padding_mask"].numpy().sum(1).max())


def test_case_ids_match_the_in_graph_preprocessor(tiny_tokenizer):
    from kerabert.heads.tagging import TokenClassificationHead

    texts = TRICKY + ["John McDonald of IBM in Zürich , U.S. 1996", "ÉTÉ Straße ǅx"]
    client = WordPieceClient(tiny_tokenizer.vocabulary, lowercase=tiny_tokenizer.lowercase,
                             max_bytes_per_word=tiny_tokenizer.max_bytes_per_word,
                             sequence_length=256,
                             inputs=["token_ids", "segment_ids", "padding_mask", "case_ids"])
    pre = TokenClassificationHead(labels=["O", "B-X", "I-X"]).preprocessor(tiny_tokenizer, 256)
    for column in (texts, [t.split() for t in texts]):
        encoded = client.encode(text=column)
        graph = pre({"text": tf.ragged.constant(column) if isinstance(column[0], list)
                     else tf.constant(column)})[0]
        width = encoded["token_ids"].shape[1]
        for name in ("token_ids", "case_ids"):
            np.testing.assert_array_equal(encoded[name], graph[name].numpy()[:, :width])
    assert "case_ids" not in _client(tiny_tokenizer).encode(text=texts)
