"""One trained `ner` model, two decodings: Viterbi (the head's default) and arg-max.

    python benchmarks/ner_decoding.py runs/ner-conll2003/model.keras \
        ../shared/data/ner/conll2003/dev.txt

Prints entity-level precision, recall and F1 (seqeval, CoNLL mode) of each decoding on
the same dev file, so the difference is the decoding alone.
"""
import json, sys, time
import kerabert
from kerabert.metrics.entities import entity_scores

model = kerabert.load_model(sys.argv[1])
head = model.head
dev = head.read(sys.argv[2])
out = {}
for decoding in ("viterbi", "argmax"):
    head.decoding = decoding
    started = time.perf_counter()
    predictions = model.predict_examples({"text": dev["text"]}, batch_size=64)
    scores = entity_scores(dev["tags"], [p["tags"] for p in predictions], head.scheme)
    out[decoding] = {"f1": scores["f1"], "precision": scores["precision"],
                     "recall": scores["recall"], "seconds": round(time.perf_counter() - started, 1),
                     "per_type": {k: round(v["f1"], 4) for k, v in scores["per_type"].items()}}
    print(decoding, json.dumps(out[decoding]), flush=True)
