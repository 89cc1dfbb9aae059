"""PyTorch -> kerabert -> export -> PyTorch on a real fine-tuned Hugging Face checkpoint.

    pip install -r benchmarks/requirements.txt
    python benchmarks/hf_same_budget.py --task sst2 --max-train-examples 4000 --epochs 1 \\
        --save /tmp/hf-sst2
    python benchmarks/hf_roundtrip.py /tmp/hf-sst2

On every sentence of the SST-2 dev file (or `--dev`): transformers' own logits (PyTorch,
eval mode, its tokenizer, padded to each batch's longest); kerabert's logits for the very
same token ids after `kerabert.load_model(folder)`; whether kerabert's in-graph tokenizer
gives the same ids; kerabert's labels from raw text (`predict_examples`) and from the
exported SavedModel's raw-text signature against transformers' labels; and the logits of
the `kerabert export --format huggingface` folder loaded back by transformers. Prints one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from common import SHARED_DATA, machine, require_shared_data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a fine-tuned BertForSequenceClassification folder")
    parser.add_argument("--dev", default=None, help="default: ../shared/data/sst2/dev.tsv")
    parser.add_argument("--text-column", default="sentence")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    if args.dev is None:
        require_shared_data()
        args.dev = str(SHARED_DATA / "sst2" / "dev.tsv")

    import numpy as np
    import tensorflow as tf
    import torch
    import transformers

    import kerabert
    from kerabert.data import load_examples

    started = time.perf_counter()
    hf_model = transformers.AutoModelForSequenceClassification.from_pretrained(args.model).eval()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    model = kerabert.load_model(args.model, compile=False)
    examples = load_examples(model.head, args.dev, text_column=args.text_column)
    texts = list(examples["text"])
    names = [hf_model.config.id2label[i] for i in range(hf_model.config.num_labels)]

    def torch_logits(model_, batch):
        with torch.no_grad():
            return model_(**{k: torch.tensor(v) for k, v in batch.items()}).logits.numpy()

    hf_logits, ours_logits, same_ids = [], [], 0
    for start in range(0, len(texts), args.batch_size):
        chunk = texts[start:start + args.batch_size]
        batch = hf_tokenizer(chunk, padding=True, truncation=True,
                             max_length=model.sequence_length, return_tensors="np")
        hf_logits.append(torch_logits(hf_model, batch))
        inputs = {"token_ids": batch["input_ids"].astype(np.int32),
                  "segment_ids": batch["token_type_ids"].astype(np.int32),
                  "padding_mask": batch["attention_mask"].astype(np.int32)}
        ours_logits.append(np.asarray(model(inputs)))
        packed = model.tokenizer.pack([model.tokenizer(tf.constant(chunk))],
                                      model.sequence_length)
        for row, mask in enumerate(batch["attention_mask"]):
            theirs = batch["input_ids"][row][mask == 1].tolist()
            ours = np.asarray(packed["token_ids"][row])[
                np.asarray(packed["padding_mask"][row]) == 1].tolist()
            same_ids += theirs == ours
    hf_logits, ours_logits = np.concatenate(hf_logits), np.concatenate(ours_logits)
    hf_labels = [names[i] for i in hf_logits.argmax(-1)]
    predictions = model.predict_examples({"text": texts}, batch_size=args.batch_size)
    kerabert_labels = [p["label"] for p in predictions]
    gold = [model.head._name(g) for g in examples["label"]] if "label" in examples else None

    with tempfile.TemporaryDirectory() as root:
        exported = kerabert.export(model, format="huggingface", root=root, name="roundtrip")
        back = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(exported)).eval()
        back_tokenizer = transformers.AutoTokenizer.from_pretrained(str(exported))
        back_logits = np.concatenate([
            torch_logits(back, back_tokenizer(texts[s:s + args.batch_size], padding=True,
                                              truncation=True,
                                              max_length=model.sequence_length,
                                              return_tensors="np"))
            for s in range(0, len(texts), args.batch_size)])
        savedmodel = kerabert.export(model, format="savedmodel", root=root, name="roundtrip",
                                     warmup=False)
        serve = tf.saved_model.load(str(savedmodel)).signatures["serving_default"]
        served = []
        for start in range(0, len(texts), args.batch_size):
            out = serve(text=tf.constant(texts[start:start + args.batch_size]))
            served += [label.decode() for label in out["label"].numpy()]

    def agree(a, b):
        return round(float(np.mean([x == y for x, y in zip(a, b)])), 5)

    print(machine())
    print(json.dumps({
        "checkpoint": args.model, "dev": args.dev, "sentences": len(texts),
        "versions": f"transformers {transformers.__version__}, torch {torch.__version__}",
        "max_abs_logit_diff_kerabert_vs_pytorch": float(np.abs(ours_logits - hf_logits).max()),
        "token_ids_identical": f"{same_ids}/{len(texts)}",
        "labels_kerabert_raw_text_vs_pytorch": agree(kerabert_labels, hf_labels),
        "labels_savedmodel_raw_text_vs_pytorch": agree(served, hf_labels),
        "max_abs_logit_diff_exported_vs_original_pytorch":
            float(np.abs(back_logits - hf_logits).max()),
        "dev_accuracy_pytorch": agree(hf_labels, gold) if gold else None,
        "dev_accuracy_kerabert": agree(kerabert_labels, gold) if gold else None,
        "seconds": round(time.perf_counter() - started, 1),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
