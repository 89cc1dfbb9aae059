"""SavedModel for TF Serving: raw strings in, decoded outputs out.

Built with Keras' `ExportArchive` (a plain `tf.Module` saved with `tf.saved_model.save`
fails under the session-based loader TF Serving uses). Signatures:

- `serving_default`: the head's raw string fields (`text`, `text`+`text_pair`,
  `question`+`context`) -> the head's `serving_outputs` (labels and scores, tags
  with offsets, answers...). Tokenization runs in the graph with tensorflow-text ops,
  so the server must have them linked in (TF Serving builds do not by default).
- `serve_token_ids`: `token_ids`, `segment_ids`, `padding_mask` (and any inputs the
  head adds) -> the model's raw outputs (e.g. `logits`).

A SavedModel that contains tensorflow-text ops cannot be loaded at all by a process
without them, even to call `serve_token_ids`; for such servers export with
`text_signature=False`: `serving_default` is then the token-ids signature and the
SavedModel holds no tensorflow-text op.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kerabert.export import serving

TEXT_SIGNATURE = "serving_default"
IDS_SIGNATURE = "serve_token_ids"


def build_archive(model, *, text_signature=True, track_preprocessor=True):
    """A `keras.export.ExportArchive` with the serving signatures of `model`.

    Args:
        model: a kerabert `Task` whose head implements `serving_outputs`.
        text_signature: add the raw-string `serving_default` signature; without it
            `serving_default` takes token ids.
        track_preprocessor: save the preprocessor's resources (lookup tables) with the
            model; TFLite conversion turns this off, as it cannot use tables the
            serving graph never reads.

    Returns:
        `(archive, signatures)`: the archive and `{signature: (inputs, outputs)}`
        where each side maps names to `(dtype, shape)`.
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    signatures = {}
    ids_name = IDS_SIGNATURE if text_signature else TEXT_SIGNATURE
    if text_signature:
        text_fn, preprocessor = serving.make_text_fn(model)
        specs = serving.text_input_specs(model.head)
        # Build the preprocessor (Keras refuses to track an unbuilt layer).
        preprocessor({name: tf.constant(["a"]) for name in specs})
        if track_preprocessor:
            archive.track(preprocessor)
        function = archive.add_endpoint(TEXT_SIGNATURE, tf.function(text_fn),
                                        input_signature=[specs])
        signatures[TEXT_SIGNATURE] = _describe(function, specs)
    else:
        serving.check_exportable(model)
    specs = serving.id_input_specs(model)
    function = archive.add_endpoint(ids_name, tf.function(serving.make_ids_fn(model)),
                                    input_signature=[specs])
    signatures[ids_name] = _describe(function, specs)
    _store_weights_once(archive)
    return archive, signatures


def _store_weights_once(archive):
    """Make the archive's variable lists hold the `tf.Variable`s themselves.

    `ExportArchive.track` lists the Keras variables, each its own trackable that saves
    its `tf.Variable`'s value, and `write_out` lists the `tf.Variable`s the endpoints
    capture (`_all_variables`): two objects per weight, so the SavedModel's checkpoint
    held every weight twice. With the same objects in both lists it is saved once.
    """
    from kerabert import compat

    tracked = compat.export_archive_trackable(archive)
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        setattr(tracked, name, [compat.backend_variable(v) for v in getattr(tracked, name)])


def _describe(function, specs):
    concrete = function.get_concrete_function(specs)
    outputs = tf.nest.map_structure(
        lambda t: (t.dtype.name, _shape(t.shape)), concrete.structured_outputs
    )
    inputs = {name: (spec.dtype.name, _shape(spec.shape)) for name, spec in specs.items()}
    return inputs, outputs


def _shape(shape):
    return [None if d is None else int(d) for d in shape.as_list()] if shape.rank is not None else None


def write(model, directory, *, text_signature=True, model_name=None, warmup_texts=None,
          warmup=None, **unused):
    """Write the SavedModel into `directory` (which must not exist or be empty).

    Args:
        model, directory: the `Task` and the version folder.
        text_signature: see `build_archive`.
        model_name: TF Serving's model name, for the warmup requests.
        warmup_texts: `{field: [texts]}` for the warmup requests (default: the card's
            examples, `warmup.EXAMPLES`).
        warmup: write `assets.extra/tf_serving_warmup_requests` (`kerabert.export.warmup`);
            `None`: when `tensorflow-serving-api` (its protos) is installed.

    Returns:
        The model-card facts: files written and signatures.
    """
    from kerabert.export import warmup as warmup_requests

    archive, signatures = build_archive(model, text_signature=text_signature)
    archive.write_out(str(directory), verbose=False)
    facts = {}
    if warmup is None and not warmup_requests.available():
        facts["warmup"] = None  # the card says how to get one
    elif warmup is not False:
        facts["warmup"] = warmup_requests.write(
            model, directory, model_name=model_name or model.name, columns=warmup_texts,
            text_signature=text_signature)
    return {
        **facts,
        "signatures": signatures,
        "requires": (["tensorflow-text ops (tensorflow_text imported, or linked into "
                      "the server)"] if text_signature else []),
    }
