"""Masked language modelling (and next-sentence prediction): BERT's own objectives.

Continuing BERT's pretraining on a domain's unlabelled text (as BioBERT and LegalBERT
did) before task fine-tuning. The prediction head is keras-hub's `MaskedLMHead`
(dense + GELU + LayerNorm, output projection tied to the backbone's token embedding,
with its own bias), as in keras-hub's `BertMaskedLM`; masking is tensorflow-text's
`mask_language_model` (what keras-hub's `MaskedLMMaskGenerator` wraps) with a
reproducible selector (`kerabert.heads.masking`), run in the tf.data pipeline, so
every epoch sees fresh masks. The optional next-sentence objective is a
two-way classifier on the pooled `[CLS]` output, as in `BertForPreTraining`.

Training rows come from `kerabert.data.corpus` (packed `token_ids`, or `text` +
`text_pair` + `next_sentence` pairs); a batch of plain `text` is a fill-mask query
whose `[MASK]` tokens are predicted (`predict_examples`).
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import keras_hub
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from kerabert import compat
from kerabert.data.tables import read_table
from kerabert.heads.base import Head
from kerabert.heads.masking import RankedItemSelector
from kerabert.heads.masked_lm_weights import (
    HEAD_WEIGHTS_FILE,
    read_head_weights,
    write_head_weights,
)

MLM_OUTPUT = "mlm"
NSP_OUTPUT = "next_sentence"
# Targets of empty mask slots: ignored by the loss and the metrics.
IGNORED_TARGET = -1
IS_NEXT, IS_RANDOM = 0, 1  # Hugging Face's next_sentence_label convention


def default_mask_selection_length(sequence_length, mask_selection_rate, whole_word=False):
    """Mask slots per row: enough for every selection (BERT: 20 at length 128).

    Whole words can span several word pieces, so they get twice the slots. Kept
    below the sequence length so the pipeline never mistakes the slots for tokens.
    """
    slots = math.ceil(mask_selection_rate * (sequence_length - 2))
    if whole_word:
        slots *= 2
    return max(1, min(slots, sequence_length - 2))


# Registered as `kerabert>MaskedLMTokenAccuracy`: the tagging head has a metric of the
# same class name; models saved under the old shared name still load (`kerabert.task`).
@keras.saving.register_keras_serializable(package="kerabert", name="MaskedLMTokenAccuracy")
class MaskedTokenAccuracy(keras.metrics.Mean):
    """Accuracy over the filled mask slots (targets `-1` are ignored).

    Example:
    ```python
    metric = MaskedTokenAccuracy()
    metric.update_state([[2, -1]], [[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]])
    float(metric.result())  # 1.0
    ```
    """

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.cast(y_true, tf.int32)
        valid = tf.cast(y_true != IGNORED_TARGET, self.dtype)
        hit = tf.cast(tf.argmax(y_pred, axis=-1, output_type=tf.int32) == y_true, self.dtype)
        super().update_state(hit, sample_weight=valid)


@keras.saving.register_keras_serializable(package="kerabert")
class MaskedPerplexity(keras.metrics.Metric):
    """exp(mean cross-entropy) over the filled mask slots (targets `-1` are ignored).

    keras-hub's `Perplexity` masks by a token id; here empty slots hold `-1`, which
    is not a valid class for the cross-entropy op, so they are replaced first.

    Example:
    ```python
    metric = MaskedPerplexity()
    metric.update_state([[0, -1]], [[[0.0, 0.0], [5.0, 0.0]]])
    float(metric.result())  # 2.0
    ```
    """

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.cast(y_true, tf.int32)
        valid = y_true != IGNORED_TARGET
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.where(valid, y_true, 0), logits=tf.cast(y_pred, tf.float32)
        )
        weights = tf.cast(valid, tf.float32)
        self.total.assign_add(tf.reduce_sum(losses * weights))
        self.count.assign_add(tf.reduce_sum(weights))

    def result(self):
        return tf.exp(tf.math.divide_no_nan(self.total, self.count))

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


class MaskedLMPreprocessor(keras.layers.Layer):
    """Raw rows -> BERT inputs with `mask_positions`, MLM targets (and NSP labels).

    - `token_ids` rows (already packed by `kerabert.data.corpus`) or `text` (+
      `text_pair`) with a `next_sentence` label are training rows: masked at random,
      afresh at every call, with targets = the original ids of the masked slots
      (`-1` in empty slots).
    - `text` (+ `text_pair`) alone is a fill-mask query: `mask_positions` are where
      the text has the mask token; there are no targets.

    Args:
        tokenizer: a `kerabert.tokenizer.BertTokenizer` (its vocabulary needs `[MASK]`).
        sequence_length: the packed length.
        mask_selection_rate: the fraction of (non-special) tokens, or whole words,
            selected for prediction.
        mask_token_rate: of the selected, the fraction replaced by `[MASK]`.
        random_token_rate: of the selected, the fraction replaced by a random token
            (the rest are kept unchanged).
        mask_selection_length: mask slots per row (default: enough for all).
        whole_word: select whole words (a word piece and its `##` continuations).
        next_sentence: rows are sentence pairs with a `next_sentence` label.
    """

    def __init__(self, tokenizer, sequence_length, mask_selection_rate=0.15,
                 mask_token_rate=0.8, random_token_rate=0.1, mask_selection_length=None,
                 whole_word=False, next_sentence=False, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)
        self.mask_selection_rate = mask_selection_rate
        self.mask_token_rate = mask_token_rate
        self.random_token_rate = random_token_rate
        self.whole_word = whole_word
        self.next_sentence = next_sentence
        self.mask_selection_length = mask_selection_length or default_mask_selection_length(
            self.sequence_length, mask_selection_rate, whole_word
        )
        if self.mask_selection_length >= self.sequence_length:
            raise ValueError(
                f"mask_selection_length {self.mask_selection_length} must be below the "
                f"sequence length {self.sequence_length}"
            )
        self.mask_id = tokenizer.mask_id
        self.special_ids = tokenizer.special_ids
        # tensorflow-text's masking with a vectorized selector (see `masking`): for
        # tokens, or for whole words given as [batch, (words), (pieces)].
        self._selector = RankedItemSelector(
            max_selections_per_batch=(math.ceil(mask_selection_rate * sequence_length)
                                      if whole_word else self.mask_selection_length),
            selection_rate=mask_selection_rate,
            unselectable_ids=self.special_ids,
        )
        self._values_chooser = tf_text.MaskValuesChooser(
            tokenizer.vocabulary_size, self.mask_id, mask_token_rate, random_token_rate
        )
        if whole_word:
            self._continuation = tf.constant(tokenizer.continuation_flags())
            special = np.zeros(tokenizer.vocabulary_size, bool)
            special[self.special_ids] = True
            self._special = tf.constant(special)

    def call(self, batch):
        if "token_ids" in batch:
            token_ids = batch["token_ids"]
            if isinstance(token_ids, tf.RaggedTensor):  # rows given as Python lists
                token_ids = token_ids.to_tensor(default_value=self.tokenizer.pad_id,
                                                shape=[None, self.sequence_length])
            token_ids = tf.cast(token_ids, tf.int32)
            token_ids = tf.ensure_shape(token_ids, [None, self.sequence_length])
            features = {
                "token_ids": token_ids,
                "segment_ids": tf.zeros_like(token_ids),
                "padding_mask": tf.where(token_ids != self.tokenizer.pad_id, 1, 0),
            }
        else:
            segments = [self._tokenize(batch["text"])]
            if "text_pair" in batch:
                segments.append(self._tokenize(batch["text_pair"]))
            features = self.tokenizer.pack(segments, self.sequence_length)
        training = "token_ids" in batch or "next_sentence" in batch
        if not training:
            features["mask_positions"] = self._query_positions(features["token_ids"])
            return features, None, None
        token_ids, positions, targets = self.mask(features["token_ids"])
        features["token_ids"] = token_ids
        features["mask_positions"] = positions
        if self.next_sentence and "next_sentence" in batch:
            labels = tf.cast(batch["next_sentence"], tf.int32)
            return features, {MLM_OUTPUT: targets, NSP_OUTPUT: labels}, None
        return features, targets, None

    def build(self, input_shape):
        self.built = True  # nothing to build: the tokenizer and masker hold no weights

    def _tokenize(self, text):
        """Word pieces of `text`, with the literal mask token kept as one token.

        WordPiece alone would split `[MASK]` into `[`, `mask`, `]`: split the text at
        it, tokenize the parts and put the mask id back between them.
        """
        parts = tf.strings.split(text, self.tokenizer.mask_token)
        pieces = self.tokenizer(parts.flat_values)
        with_mask = tf.concat([pieces, tf.fill([tf.shape(parts.flat_values)[0], 1], self.mask_id)],
                              axis=1)
        tokens = tf.RaggedTensor.from_row_splits(with_mask, parts.row_splits).merge_dims(1, 2)
        return tokens[:, :-1]  # no mask after the last part

    def mask(self, token_ids):
        """Dense `[n, length]` ids -> (masked ids, `[n, slots]` positions, targets)."""
        slots = self.mask_selection_length
        if self.whole_word:
            items = self._words(token_ids)
        else:
            items = tf.RaggedTensor.from_tensor(token_ids)
        masked, positions, originals = tf_text.mask_language_model(
            items, self._selector, self._values_chooser
        )
        masked = masked.to_tensor(shape=[None, self.sequence_length])
        positions = positions.to_tensor(shape=[None, slots])
        targets = originals.to_tensor(default_value=IGNORED_TARGET, shape=[None, slots])
        masked = tf.ensure_shape(tf.cast(masked, tf.int32), [None, self.sequence_length])
        positions = tf.ensure_shape(tf.cast(positions, tf.int32), [None, slots])
        targets = tf.ensure_shape(tf.cast(targets, tf.int32), [None, slots])
        return masked, positions, targets

    def _words(self, token_ids):
        """`[n, length]` -> ragged `[n, (words), (pieces)]`; special tokens stand alone."""
        special = tf.gather(self._special, token_ids)
        continuation = tf.gather(self._continuation, token_ids)
        after_special = tf.pad(special[:, :-1], [[0, 0], [1, 0]], constant_values=True)
        starts = ~continuation | special | after_special
        flat_ids = tf.reshape(token_ids, [-1])
        flat_starts = tf.where(tf.reshape(starts, [-1]))[:, 0]
        words = tf.RaggedTensor.from_row_starts(flat_ids, flat_starts)
        return tf.RaggedTensor.from_row_lengths(
            words, tf.reduce_sum(tf.cast(starts, tf.int64), axis=1)
        )

    def _query_positions(self, token_ids):
        """Positions of the mask token in each row, padded with 0 to the slot count."""
        is_mask = token_ids == self.mask_id
        positions = tf.ragged.boolean_mask(
            tf.broadcast_to(tf.range(tf.shape(token_ids)[1]), tf.shape(token_ids)), is_mask
        )
        return positions.to_tensor(shape=[None, self.mask_selection_length])

    def get_config(self):
        config = super().get_config()
        config.update({
            "sequence_length": self.sequence_length,
            "mask_selection_rate": self.mask_selection_rate,
            "mask_token_rate": self.mask_token_rate,
            "random_token_rate": self.random_token_rate,
            "mask_selection_length": self.mask_selection_length,
            "whole_word": self.whole_word,
            "next_sentence": self.next_sentence,
        })
        return config


class MaskedLMHead(Head):
    """BERT's masked-LM head (and optional next-sentence head) for domain pretraining.

    Training data: packed `token_ids` rows (MLM only) or `text` + `text_pair` +
    `next_sentence` pairs (MLM + NSP), both made by `kerabert.data.corpus.Corpus`.
    Prediction data: `text` containing `[MASK]` tokens (fill-mask).

    The output projection is the backbone's token embedding (tied, as in BERT), plus a
    bias of the head's own. `load_checkpoint_weights` loads an existing head from a
    checkpoint (Hugging Face `cls.predictions.*`, Google `cls/predictions/*`).

    Args:
        mask_selection_rate: the fraction of tokens (or whole words) selected (0.15).
        mask_token_rate: of the selected, the fraction replaced by `[MASK]` (0.8).
        random_token_rate: of the selected, the fraction replaced by a random token
            (0.1); the rest stay unchanged.
        mask_selection_length: mask slots per row (default: enough for all).
        whole_word: mask whole words rather than single word pieces.
        next_sentence: also train next-sentence prediction on sentence pairs.
        top_k: predictions returned per mask by `decode`.

    Example:
    ```python
    head = MaskedLMHead(whole_word=True)
    model = kerabert.build_model(head, backbone="all-minilm-l6-v2")
    model.predict_examples({"text": ["Paris is the [MASK] of France."]})
    ```
    """

    name = "masked-lm"
    recipe = {"epochs": 1, "learning_rate": 5e-5, "warmup_ratio": 0.06,
              "sequence_length": 128}

    def __init__(self, mask_selection_rate=0.15, mask_token_rate=0.8, random_token_rate=0.1,
                 mask_selection_length=None, whole_word=False, next_sentence=False, top_k=5):
        if not 0.0 < mask_selection_rate < 1.0:
            raise ValueError(f"mask_selection_rate must be in (0, 1), got {mask_selection_rate}")
        if mask_token_rate < 0 or random_token_rate < 0 or mask_token_rate + random_token_rate > 1:
            raise ValueError(
                "mask_token_rate and random_token_rate must be >= 0 with a sum <= 1, got "
                f"{mask_token_rate} and {random_token_rate}"
            )
        self.mask_selection_rate = float(mask_selection_rate)
        self.mask_token_rate = float(mask_token_rate)
        self.random_token_rate = float(random_token_rate)
        self.mask_selection_length = mask_selection_length
        self.whole_word = bool(whole_word)
        self.next_sentence = bool(next_sentence)
        self.top_k = int(top_k)
        self._vocabulary = None  # set by `preprocessor`, for decoding
        self._mask_id = None

    # -- data ------------------------------------------------------------------------------
    @property
    def fields(self):
        return ("text", "text_pair") if self.next_sentence else ("text",)

    @property
    def target_fields(self):
        # For MLM the targets are the text itself: packed corpus rows carry them.
        return ("token_ids", "next_sentence") if self.next_sentence else ("token_ids",)

    def read(self, path, *, text_column=None, pair_column=None, **options):
        """Read fill-mask queries (`text`, with `[MASK]` tokens) from CSV/TSV/JSONL/lines.

        Training text is a corpus: see `kerabert.data.corpus.Corpus`.
        """
        from kerabert.heads.classification import PAIR_COLUMNS, TEXT_COLUMNS

        columns = {"text": text_column or TEXT_COLUMNS}
        if self.next_sentence:
            columns["text_pair"] = pair_column or PAIR_COLUMNS
        return read_table(path, columns, required=list(columns), **options)

    def preprocessor(self, tokenizer, sequence_length):
        if tokenizer.mask_token not in tokenizer._index:
            raise ValueError(
                f"the vocabulary has no mask token {tokenizer.mask_token!r}: masked-LM needs one"
            )
        self._vocabulary = list(tokenizer.vocabulary)
        self._mask_id = tokenizer.mask_id
        return MaskedLMPreprocessor(
            tokenizer,
            sequence_length,
            mask_selection_rate=self.mask_selection_rate,
            mask_token_rate=self.mask_token_rate,
            random_token_rate=self.random_token_rate,
            mask_selection_length=self.mask_selection_length,
            whole_word=self.whole_word,
            next_sentence=self.next_sentence,
            name=f"{self.name}_preprocessor",
        )

    def extra_inputs(self):
        return {"mask_positions": keras.Input(shape=(None,), dtype="int32", name="mask_positions")}

    # -- layers ----------------------------------------------------------------------------
    def build_outputs(self, backbone_outputs, inputs, backbone=None):
        if backbone is None or not hasattr(backbone, "token_embedding"):
            raise ValueError(
                "the masked-LM head ties its output to the backbone's token embedding: "
                "build_outputs needs the keras-hub BertBackbone (its third argument)")
        approximate = getattr(backbone, "hidden_activation", "gelu_approximate") != "gelu"
        mlm = keras_hub.layers.MaskedLMHead(
            token_embedding=backbone.token_embedding,
            intermediate_activation=lambda x: keras.activations.gelu(x, approximate=approximate),
            layer_norm_epsilon=1e-12,  # BERT's, not keras-hub's 1e-5 default
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=backbone.dtype_policy,
            name="mlm_head",
        )
        logits = keras.layers.Activation("linear", dtype="float32", name=MLM_OUTPUT)(
            mlm(backbone_outputs["sequence_output"], inputs["mask_positions"])
        )
        if not self.next_sentence:
            return logits
        nsp = keras.layers.Dense(
            2,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype="float32",
            name=NSP_OUTPUT,
        )(backbone_outputs["pooled_output"])
        return {MLM_OUTPUT: logits, NSP_OUTPUT: nsp}

    def loss(self):
        mlm = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=IGNORED_TARGET
        )
        if not self.next_sentence:
            return mlm
        return {MLM_OUTPUT: mlm,
                NSP_OUTPUT: keras.losses.SparseCategoricalCrossentropy(from_logits=True)}

    def metrics(self):
        mlm = [MaskedTokenAccuracy(name="accuracy"), MaskedPerplexity(name="perplexity")]
        if not self.next_sentence:
            return mlm
        return {MLM_OUTPUT: mlm,
                NSP_OUTPUT: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    # -- checkpoints -----------------------------------------------------------------------
    def load_checkpoint_weights(self, model, checkpoint):
        """Load the checkpoint's own MLM (and NSP) head into `model`, if it has one.

        Args:
            model: a `kerabert.Task` built with this head.
            checkpoint: what the backbone was loaded from (a `load_backbone` spec).

        Returns:
            A sentence saying what was loaded, or that the head was initialised.
        """
        found = read_head_weights(checkpoint)
        if found is None or "mlm" not in found.weights:
            where = found.source if found is not None else str(checkpoint)
            return (f"{where} has no masked-LM head (no cls.predictions weights): the MLM "
                    "head is newly initialised")
        weights = found.weights
        mlm = compat.masked_lm_head_variables(model.get_layer("mlm_head"))
        for name, variable in mlm.items():
            _assign(variable, weights["mlm"][name], found.source)
        message = f"loaded the masked-LM head from {found.source}"
        if self.next_sentence:
            nsp = model.get_layer(NSP_OUTPUT)
            if "nsp" in weights:
                _assign(nsp.kernel, weights["nsp"]["kernel"], found.source)
                _assign(nsp.bias, weights["nsp"]["bias"], found.source)
                message += " (with its next-sentence head)"
            else:
                message += "; it has no next-sentence head: that one is newly initialised"
        return message

    def save_head_weights(self, model, directory):
        """Write the trained head beside a saved backbone, in Hugging Face's names."""
        weights = {"mlm": compat.masked_lm_head_variables(model.get_layer("mlm_head"))}
        if self.next_sentence:
            nsp = model.get_layer(NSP_OUTPUT)
            weights["nsp"] = {"kernel": nsp.kernel, "bias": nsp.bias}
        weights = {group: {k: keras.ops.convert_to_numpy(v) for k, v in values.items()}
                   for group, values in weights.items()}
        return write_head_weights(weights, Path(directory) / HEAD_WEIGHTS_FILE)

    # -- outputs ---------------------------------------------------------------------------
    # Decoding is `serving_outputs` (softmax, top-k in TF ops); `format_predictions`
    # keeps, per row, the slots of its actual `[MASK]` tokens with their positions.
    def format_predictions(self, serving, features, examples):
        counts = (np.asarray(features["token_ids"]) == self._mask_id).sum(axis=1)
        tokens, scores = serving["top_tokens"], serving["top_scores"]
        results = []
        for row, count in enumerate(counts):
            masks = [{
                "position": int(features["mask_positions"][row, slot]),
                "predictions": [
                    {"token": token.decode("utf-8") if isinstance(token, bytes) else str(token),
                     "score": round(float(score), 6)}
                    for token, score in zip(tokens[row, slot], scores[row, slot])
                ],
            } for slot in range(min(int(count), tokens.shape[1]))]
            result = {"masks": masks}
            if "is_next_score" in serving:
                result["is_next_score"] = float(serving["is_next_score"][row])
            results.append(result)
        return results

    def serving_outputs(self, outputs, features):
        nsp = None
        if isinstance(outputs, dict):
            nsp = outputs.get(NSP_OUTPUT)
            outputs = outputs[MLM_OUTPUT]
        if self._vocabulary is None:
            raise ValueError("decoding needs the vocabulary: call head.preprocessor(...) first")
        scores, ids = tf.math.top_k(tf.nn.softmax(tf.cast(outputs, tf.float32)), k=self.top_k)
        served = {"top_tokens": tf.gather(tf.constant(self._vocabulary), ids),
                  "top_scores": scores}
        if nsp is not None:
            served["is_next_score"] = tf.nn.softmax(tf.cast(nsp, tf.float32))[:, IS_NEXT]
        return served

    def search_space(self, hp):
        return {
            "learning_rate": hp.Choice("learning_rate", [1e-5, 3e-5, 5e-5, 1e-4]),
            "batch_size": hp.Choice("batch_size", [16, 32]),
            "epochs": hp.Int("epochs", 1, 3),
            "warmup_ratio": hp.Choice("warmup_ratio", [0.0, 0.06, 0.1]),
        }

    def get_config(self):
        return {
            "mask_selection_rate": self.mask_selection_rate,
            "mask_token_rate": self.mask_token_rate,
            "random_token_rate": self.random_token_rate,
            "mask_selection_length": self.mask_selection_length,
            "whole_word": self.whole_word,
            "next_sentence": self.next_sentence,
            "top_k": self.top_k,
        }


def _assign(variable, value, source):
    value = np.asarray(value)
    if tuple(value.shape) != tuple(variable.shape):
        raise ValueError(
            f"{source}: masked-LM head weight of shape {tuple(value.shape)} does not fit "
            f"{variable.path} of shape {tuple(variable.shape)}"
        )
    variable.assign(value.astype(variable.dtype))
