"""Make tiny fine-tuned Hugging Face BERT checkpoints and their PyTorch outputs.

The tests of `kerabert.huggingface` (loading fine-tuned heads, and the way back with
`kerabert export --format huggingface`) compare kerabert against these numbers, so they
need neither PyTorch nor transformers. One folder per checkpoint type under
``tests/fixtures/hf/``, each a folder `transformers` wrote with ``save_pretrained``
(``config.json``, ``model.safetensors``, ``tokenizer.json``, ``tokenizer_config.json``,
``vocab.txt``) plus ``reference.npz``:

* ``sentences``: unicode ``[n]``, the inputs (pairs stored as ``"first ||| second"``);
* ``token_ids``, ``segment_ids``, ``padding_mask``: int32 ``[n, L]`` from the
  checkpoint's own ``tokenizer.json`` (``tokenizers``), padded with ``[PAD]``;
* ``logits`` (and ``seq_relationship_logits`` for pretraining): float32, transformers'
  PyTorch model in eval mode; positions where ``padding_mask`` is 0 are set to 0;
* ``sequence_output``: float32 ``[n, L, 32]``, the encoder's last hidden state;
* ``versions``: the transformers / torch / tokenizers versions used.

Every weight is drawn at random with a large spread (not BERT's 0.02), so a weight
ported to the wrong place moves the logits far beyond the tests' 1e-4 tolerance.

Requirements (not kerabert's dependencies): ``pip install -r benchmarks/requirements.txt``.

    python benchmarks/reference/make_hf_fixtures.py            # writes tests/fixtures/hf/
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

# Words of the test sentences (SST-2 and CoNLL-2003 style, with accented and non-Latin
# words); the vocabulary holds them whole plus every character, alone and as `##c`, so
# WordPiece can spell any other word of these scripts.
SENTENCES = [
    "A gorgeous, witty, seductive movie.",
    "The film is strictly routine.",
    "Café owners in Zürich said the naïve plan failed.",
    "EU rejects German call to boycott British lamb.",
    "Peter Blackburn met Тимур in 東京 on Friday.",
    "It's a charming and often affecting journey. ||| A fine film.",
]
WORDS = ("a gorgeous witty seductive movie the film is strictly routine café cafe owners "
         "in zürich zurich said naïve naive plan failed eu rejects german call to boycott "
         "british lamb peter blackburn met on friday it ' s charming and often affecting "
         "journey fine , . ! ?").split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu")

NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]

# folder -> (transformers class, config extras, tokenizer lower-cases)
CHECKPOINTS = {
    "bert_sequence_classification": (
        "BertForSequenceClassification",
        {"id2label": {0: "negative", 1: "neutral", 2: "positive"},
         "problem_type": "single_label_classification"}, True),
    "bert_multi_label": (
        "BertForSequenceClassification",
        {"id2label": {0: "action", 1: "comedy", 2: "drama", 3: "horror"},
         "problem_type": "multi_label_classification"}, True),
    "bert_token_classification": (
        "BertForTokenClassification", {"id2label": dict(enumerate(NER_LABELS))}, True),
    "bert_question_answering": ("BertForQuestionAnswering", {}, True),
    "bert_masked_lm": ("BertForMaskedLM", {}, True),
    "bert_pretraining": ("BertForPreTraining", {}, True),
    # Cased: no lower-casing, accents kept.
    "bert_cased_sequence_classification": (
        "BertForSequenceClassification",
        {"id2label": {0: "NEGATIVE", 1: "POSITIVE"}}, False),
}


def vocabulary(lowercase):
    words = set(WORDS)
    if not lowercase:
        words |= {w.capitalize() for w in WORDS} | {"EU", "Тимур", "東京"}
    chars = sorted({c for s in SENTENCES for c in (s.lower() if lowercase else s)
                    if not c.isspace()} | set("abcdefghijklmnopqrstuvwxyz0123456789"))
    tokens = SPECIAL + sorted(words) + chars + [f"##{c}" for c in chars]
    return list(dict.fromkeys(tokens))  # a word that is also a character once


def randomize(model, seed):
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if "LayerNorm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.2 * noise)
            else:
                parameter.copy_(0.3 * noise)


def encode(tokenizer_file, sentences):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    encodings = [tokenizer.encode(*s.split(" ||| ")) if " ||| " in s else tokenizer.encode(s)
                 for s in sentences]
    length = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(sentences), length), np.int32)
    segments = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for row, e in enumerate(encodings):
        ids[row, :len(e.ids)] = e.ids
        segments[row, :len(e.ids)] = e.type_ids
        mask[row, :len(e.ids)] = 1
    return ids, segments, mask


def make(folder, class_name, extras, lowercase, seed):
    import tokenizers
    import torch
    import transformers

    folder.mkdir(parents=True)
    tokens = vocabulary(lowercase)
    tokenizer = transformers.BertTokenizer(vocab={t: i for i, t in enumerate(tokens)},
                                           do_lower_case=lowercase,
                                           strip_accents=None if lowercase else False)
    tokenizer.save_pretrained(str(folder))
    # What a Hugging Face BERT folder has beside tokenizer.json (kerabert reads it).
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    config = transformers.BertConfig(vocab_size=len(tokens), **TINY,
                                     **extras)
    model = getattr(transformers, class_name)(config).eval()
    randomize(model, seed)
    model.save_pretrained(str(folder))
    ids, segments, mask = encode(folder / "tokenizer.json", SENTENCES)
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids, dtype=torch.long),
                    token_type_ids=torch.tensor(segments, dtype=torch.long),
                    attention_mask=torch.tensor(mask, dtype=torch.long),
                    output_hidden_states=True)
    arrays = {"sentences": np.array(SENTENCES), "token_ids": ids, "segment_ids": segments,
              "padding_mask": mask,
              "versions": np.array(f"transformers {transformers.__version__}, torch "
                                   f"{torch.__version__}, tokenizers {tokenizers.__version__}")}
    sequence = out.hidden_states[-1].numpy() * mask[:, :, None]
    arrays["sequence_output"] = sequence.astype(np.float32)
    if class_name == "BertForQuestionAnswering":
        logits = np.stack([out.start_logits.numpy(), out.end_logits.numpy()], axis=1)
        arrays["logits"] = (logits * mask[:, None, :]).astype(np.float32)
    elif class_name == "BertForPreTraining":
        arrays["logits"] = (out.prediction_logits.numpy() * mask[:, :, None]).astype(np.float32)
        arrays["seq_relationship_logits"] = out.seq_relationship_logits.numpy()
    else:
        logits = out.logits.numpy()
        if logits.ndim == 3:
            logits = logits * mask[:, :, None]
        arrays["logits"] = logits.astype(np.float32)
    np.savez_compressed(folder / "reference.npz", **arrays)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default=str(Path(__file__).parents[2] / "tests" /
                                                "fixtures" / "hf"))
    args = parser.parse_args()
    root = Path(args.output)
    for seed, (name, (class_name, extras, lowercase)) in enumerate(CHECKPOINTS.items()):
        if (root / name).exists():
            shutil.rmtree(root / name)
        make(root / name, class_name, extras, lowercase, seed)
        size = sum(p.stat().st_size for p in (root / name).iterdir())
        print(f"{name}: {class_name}, {size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
