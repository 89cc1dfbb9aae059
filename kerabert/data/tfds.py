"""tensorflow-datasets adapter: `tfds:NAME[:SPLIT]` specs, e.g. `tfds:glue/sst2:validation`.

A dataset already prepared in the tfds data directory is read offline. Otherwise it is
downloaded only when the network answers: without one, a plain `tfds.load` waits minutes
before failing, so the adapter checks first and fails fast with a clear message.
"""

from __future__ import annotations

import socket

from kerabert.data.tables import DataError, Examples

TFDS_PREFIX = "tfds:"
# Fields of common datasets -> kerabert fields.
KNOWN_FIELDS = {
    "glue/sst2": {"text": "sentence", "label": "label"},
    "imdb_reviews": {"text": "text", "label": "label"},
    "ag_news_subset": {"text": "description", "label": "label"},
    "glue/mrpc": {"text": "sentence1", "text_pair": "sentence2", "label": "label"},
    "glue/qqp": {"text": "question1", "text_pair": "question2", "label": "label"},
}
_PROBE_HOST = ("storage.googleapis.com", 443)


def parse_spec(spec):
    """`tfds:glue/sst2:validation` -> `("glue/sst2", "validation")` (split default `train`)."""
    body = spec[len(TFDS_PREFIX):]
    name, _, split = body.partition(":")
    if not name:
        raise DataError(f"{spec}: expected tfds:NAME[:SPLIT]")
    return name, split or "train"


def network_available(timeout=3.0):
    """Whether tfds's download host answers within `timeout` seconds."""
    try:
        with socket.create_connection(_PROBE_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def read_tfds(head, spec, *, data_dir=None, download=True, fields=None, **_):
    """Read a tensorflow-datasets split into `Examples` with the head's fields.

    Args:
        head: the head (its `fields` and `target_fields` are read).
        spec: `tfds:NAME[:SPLIT]`.
        data_dir: the tfds data directory.
        download: download and prepare when not prepared locally (needs internet).
        fields: `{kerabert field: tfds feature}`; known datasets have defaults.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError(f"{spec}: install kerabert[tfds] to read tensorflow-datasets") from None
    name, split = parse_spec(spec)
    fields = fields or KNOWN_FIELDS.get(name)
    if fields is None:
        raise DataError(f"{spec}: no known fields for {name!r}; pass fields={{'text': ...}}")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:
        raise DataError(f"{spec}: unknown tensorflow-datasets name ({e})") from None
    prepared = builder.is_prepared() if hasattr(builder, "is_prepared") else False
    if not prepared:
        if not download:
            raise DataError(f"{spec}: not prepared in {builder.data_dir} and download=False")
        if not network_available():
            raise DataError(
                f"{spec}: not prepared in {builder.data_dir}, and the tensorflow-datasets "
                "download host cannot be reached (offline?). Prepare it on a machine with "
                "internet and copy the data directory, or use a local CSV/TSV/JSONL file."
            )
        builder.download_and_prepare()
    dataset = builder.as_dataset(split=split)
    wanted = {f: fields[f] for f in (*head.fields, *head.target_fields) if f in fields}
    label_names = None
    label_feature = builder.info.features[wanted["label"]] if "label" in wanted else None
    if label_feature is not None and hasattr(label_feature, "names"):
        label_names = label_feature.names
    columns = {f: [] for f in wanted}
    for row in tfds.as_numpy(dataset):
        for field, feature in wanted.items():
            value = row[feature]
            if field == "label" and label_names is not None:
                value = label_names[int(value)]
            elif isinstance(value, bytes):
                value = value.decode("utf-8")
            columns[field].append(value if isinstance(value, str) else str(value))
    return Examples(columns, source=spec)
