"""Make tiny Hugging Face checkpoints of the BERT family beside BERT, with PyTorch outputs.

The tests of `kerabert.families` compare kerabert's backbones and in-graph tokenizers
against these, so they need neither PyTorch nor transformers. One folder per family
under ``tests/fixtures/families/``, each written by transformers' ``save_pretrained``
(``config.json``, ``model.safetensors``, ``tokenizer.json``, ``tokenizer_config.json``)
plus ``reference.npz``:

* ``sentences``: unicode ``[n]``, the inputs (pairs stored as ``"first ||| second"``);
* ``token_ids``, ``segment_ids``, ``padding_mask``: int32 ``[n, L]`` from the
  checkpoint's own ``tokenizer.json`` (``tokenizers``), padded with the pad id;
* ``sequence_output``: float32 ``[n, L, 32]``, the encoder's last hidden state from
  transformers' PyTorch model in eval mode (0 where ``padding_mask`` is 0);
* ``pooled_output`` (ALBERT, which has a pooler): float32 ``[n, 32]``;
* ``versions``: the transformers / torch / tokenizers / sentencepiece versions used.

The checkpoints are `...ForSequenceClassification` models (the model-name prefix of task
checkpoints, e.g. ``roberta.``, is exercised). SentencePiece tokenizers (ALBERT,
XLM-RoBERTa, DeBERTa-v3) are trained here on a few thousand SST-2 and CoNLL-2003
sentences from ``../shared/data`` with each family's special pieces and normalization,
then converted by transformers to ``tokenizer.json``; RoBERTa's byte-level BPE is trained
on the same sentences with ``tokenizers``; DistilBERT and ELECTRA use the WordPiece
vocabulary of ``make_hf_fixtures.py``. Every weight is drawn at random with a
large spread, so a misplaced weight moves the outputs far beyond the tests' tolerance.

Requirements (not kerabert's dependencies): ``pip install -r benchmarks/requirements.txt``.

    python benchmarks/reference/make_family_fixtures.py      # writes tests/fixtures/families/
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from make_hf_fixtures import SENTENCES, encode, randomize, vocabulary  # noqa: E402

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            hidden_act="gelu")
LABELS = {"id2label": {0: "negative", 1: "positive"}}

# folder -> (transformers model type prefix, config class, config extras)
FAMILIES = {
    "distilbert": ("DistilBert", dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                      max_position_embeddings=64, activation="gelu")),
    "electra": ("Electra", dict(TINY, embedding_size=16, max_position_embeddings=64,
                                type_vocab_size=2)),
    "xlm_roberta": ("XLMRoberta", dict(TINY, max_position_embeddings=66, type_vocab_size=1,
                                       layer_norm_eps=1e-5,
                                       pad_token_id=1, bos_token_id=0, eos_token_id=2)),
    "albert": ("Albert", dict(TINY, hidden_act="gelu_new", embedding_size=16,
                              max_position_embeddings=64, type_vocab_size=2,
                              num_hidden_groups=1, inner_group_num=1, pad_token_id=0,
                              bos_token_id=2, eos_token_id=3)),
    "deberta_v3": ("DebertaV2", dict(TINY, max_position_embeddings=64, type_vocab_size=0,
                                     relative_attention=True, position_buckets=16,
                                     max_relative_positions=-1, pos_att_type=["p2c", "c2p"],
                                     share_att_key=True, norm_rel_ebd="layer_norm",
                                     position_biased_input=False, layer_norm_eps=1e-7,
                                     pad_token_id=0)),
    # Last, so that the seeds of the folders above stay as they were.
    "roberta": ("Roberta", dict(TINY, max_position_embeddings=66, type_vocab_size=1,
                                layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
                                eos_token_id=2)),
}

# SentencePiece training options per family: ids and names of the special pieces, as
# the real checkpoints have them.
SENTENCEPIECE = {
    "xlm_roberta": dict(pad_id=-1, unk_id=0, bos_id=1, eos_id=2),
    "albert": dict(pad_id=0, unk_id=1, bos_id=2, eos_id=3, pad_piece="<pad>",
                   unk_piece="<unk>", bos_piece="[CLS]", eos_piece="[SEP]",
                   control_symbols=["[MASK]"]),
    "deberta_v3": dict(pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="[PAD]",
                       bos_piece="[CLS]", eos_piece="[SEP]", unk_piece="[UNK]"),
}
SENTENCEPIECE_FILES = {"xlm_roberta": "sentencepiece.bpe.model", "albert": "spiece.model",
                       "deberta_v3": "spm.model"}


def corpus(shared):
    """A few thousand real sentences to train the tiny SentencePiece models on."""
    lines = list(SENTENCES)
    with open(shared / "sst2" / "train.tsv", encoding="utf-8") as f:
        lines += [line.split("\t")[0] for line in f.read().splitlines()[1:3001]]
    with open(shared / "ner" / "conll2003" / "train.txt", encoding="utf-8") as f:
        blocks = f.read().split("\n\n")[:2000]
    lines += [" ".join(row.split()[0] for row in block.splitlines() if row.strip())
              for block in blocks]
    return [line.replace(" ||| ", " ") for line in lines if line.strip()]


def sentencepiece_tokenizer(name, folder, lines, class_name):
    import sentencepiece
    import transformers

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=600,
        model_type="unigram", character_coverage=1.0, minloglevel=2,
        **SENTENCEPIECE[name])
    with tempfile.TemporaryDirectory() as source:
        with open(os.path.join(source, SENTENCEPIECE_FILES[name]), "wb") as f:
            f.write(model.getvalue())
        tokenizer = getattr(transformers, f"{class_name}Tokenizer").from_pretrained(source)
    tokenizer.save_pretrained(str(folder))
    return len(tokenizer)


def byte_level_bpe_tokenizer(folder, lines):
    """RoBERTa's byte-level BPE, trained here (600 tokens) with its special tokens."""
    import tokenizers
    import transformers

    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(lines, vocab_size=600, min_frequency=2, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    with tempfile.TemporaryDirectory() as source:
        bpe.save_model(source)
        tokenizer = transformers.RobertaTokenizer.from_pretrained(source)
    tokenizer.save_pretrained(str(folder))
    return len(tokenizer)


def wordpiece_tokenizer(folder, class_name):
    import transformers

    tokens = vocabulary(True)
    tokenizer = getattr(transformers, f"{class_name}Tokenizer")(
        vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=True)
    tokenizer.save_pretrained(str(folder))
    return len(tokens)


def make(name, folder, lines, seed):
    import sentencepiece
    import tokenizers
    import torch
    import transformers

    class_name, extras = FAMILIES[name]
    folder.mkdir(parents=True)
    if name in SENTENCEPIECE:
        size = sentencepiece_tokenizer(name, folder, lines, class_name)
    elif name == "roberta":
        size = byte_level_bpe_tokenizer(folder, lines)
    else:
        size = wordpiece_tokenizer(folder, class_name)
    config = getattr(transformers, f"{class_name}Config")(vocab_size=size, **extras, **LABELS)
    model = getattr(transformers, f"{class_name}ForSequenceClassification")(config).eval()
    randomize(model, seed)
    model.save_pretrained(str(folder))
    ids, segments, mask = encode(folder / "tokenizer.json", SENTENCES)
    pad = config.pad_token_id or 0
    ids = np.where(mask > 0, ids, pad).astype(np.int32)
    inputs = {"input_ids": torch.tensor(ids, dtype=torch.long),
              "attention_mask": torch.tensor(mask, dtype=torch.long)}
    if name not in ("distilbert",) and config.type_vocab_size:
        inputs["token_type_ids"] = torch.tensor(segments, dtype=torch.long)
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    arrays = {"sentences": np.array(SENTENCES), "token_ids": ids, "segment_ids": segments,
              "padding_mask": mask,
              "sequence_output": (out.hidden_states[-1].numpy()
                                  * mask[:, :, None]).astype(np.float32),
              "versions": np.array(
                  f"transformers {transformers.__version__}, torch {torch.__version__}, "
                  f"tokenizers {tokenizers.__version__}, sentencepiece "
                  f"{sentencepiece.__version__}")}
    if name == "albert":
        with torch.no_grad():
            arrays["pooled_output"] = model.albert(**inputs).pooler_output.numpy()
    np.savez_compressed(folder / "reference.npz", **arrays)


def main():
    root = Path(__file__).parents[2]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default=str(root / "tests" / "fixtures" / "families"))
    parser.add_argument("--shared-data", default=os.environ.get(
        "KERABERT_SHARED_DATA", str(root.parent / "shared" / "data")))
    parser.add_argument("--only", nargs="*", choices=sorted(FAMILIES))
    args = parser.parse_args()
    lines = corpus(Path(args.shared_data))
    out = Path(args.output)
    for seed, name in enumerate(FAMILIES):
        if args.only and name not in args.only:
            continue
        if (out / name).exists():
            shutil.rmtree(out / name)
        make(name, out / name, lines, 100 + seed)
        size = sum(p.stat().st_size for p in (out / name).iterdir())
        print(f"{name}: {size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
