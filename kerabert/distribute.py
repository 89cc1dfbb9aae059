"""`tf.distribute` strategies and the datasets that go with them.

`get_strategy(name)` picks a strategy; build the model, optimizer and metrics inside
`strategy.scope()`. `distribute_dataset` turns a function `(batch_size, shard) ->
tf.data.Dataset` into a distributed dataset whose *global* batch (what the user asks
for) is split into equal per-replica batches.

Sharding policy (multi-worker): kerabert reads raw examples into memory before
tokenizing, so data is sharded **by example, before tokenization**: worker `i` of `n`
keeps examples `i, i+n, i+2n, ...` (`Examples.take(range(i, N, n))`, or
`Dataset.shard(n, i)` for a `tf.data` source), tokenizes only those, and batches them
to the per-replica batch size. tf.data's own auto-sharding is turned off (it would
shard again, by file or by element). Every worker repeats its shard forever and runs
`steps_per_epoch = ceil(N / global_batch)` steps per epoch, so all workers run the same
number of steps (a collective op waits for every worker: an unequal count would hang).

TPU rules: static shapes everywhere. Use `tpu_dataset_options()`: every batch padded
to `sequence_length` (`length_mode="fixed"`), `drop_remainder=True`, repeat. Strings
never reach the device: tokenization runs in the `tf.data` map on the host, and the
model takes only integer tensors. `check_static_dataset` verifies a dataset obeys this.

Example:
```python
strategy = get_strategy("auto")
with strategy.scope():
    model = kerabert.build_model("sentiment", labels=["neg", "pos"])
dataset = distribute_dataset(
    strategy,
    lambda batch_size, shard: model.make_dataset(shard_examples(examples, shard),
                                                 batch_size=batch_size, training=True,
                                                 repeat=True),
    global_batch_size=64,
)
```
"""

from __future__ import annotations

import contextlib
import json
import os

import tensorflow as tf

from kerabert.config import STRATEGIES  # noqa: E402  (the names are kept there, TF-free)
from kerabert import compat  # noqa: E402

# Environment variables that say a TPU is attached (the resolver is only tried then:
# without one, TPUClusterResolver() queries the GCE metadata server and may hang).
_TPU_HINTS = ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE", "KERAS_TPU")


def tf_config():
    """The parsed `TF_CONFIG` environment variable (`{}` when unset)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e.msg})") from None


def _multi_worker_cluster():
    cluster = tf_config().get("cluster", {})
    return sum(len(cluster.get(role, [])) for role in ("chief", "worker")) > 1


def _tpu_present(tpu):
    return tpu is not None or any(os.environ.get(name) for name in _TPU_HINTS)


def get_strategy(name="auto", *, devices=None, tpu=None):
    """A `tf.distribute.Strategy` by name.

    Args:
        name: one of `STRATEGIES`:
            - `"auto"`: TPU if one is attached (a TPU address is given or set in the
              environment), multi-worker if `TF_CONFIG` describes several workers,
              mirrored if several GPUs are visible, otherwise the default strategy.
            - `"default"`: no distribution (the current default strategy).
            - `"one-device"`: everything on one device (the first GPU, else the CPU).
            - `"mirrored"`: synchronous data parallelism over local devices (all GPUs;
              on a machine without GPUs, all logical CPU devices).
            - `"multi-worker"`: `MultiWorkerMirroredStrategy` over the cluster in
              `TF_CONFIG` (one process per worker, same program everywhere).
            - `"tpu"`: `TPUStrategy` through `TPUClusterResolver(tpu)`.
        devices: device names for `"mirrored"` / `"one-device"`.
        tpu: a TPU name or `grpc://` address for the resolver (`"local"` on a TPU VM).

    Returns:
        A `tf.distribute.Strategy`.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "auto":
        if _tpu_present(tpu):
            name = "tpu"
        elif _multi_worker_cluster():
            name = "multi-worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one-device":
        if devices:
            device = devices[0]
        else:
            gpus = tf.config.list_logical_devices("GPU")
            device = gpus[0].name if gpus else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        cross_device_ops = None
        if not any("GPU" in d.upper() for d in devices):
            # NCCL (the GPU default) does not reduce CPU tensors.
            cross_device_ops = tf.distribute.ReductionToOneDevice()
        return tf.distribute.MirroredStrategy(devices, cross_device_ops=cross_device_ops)
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def strategy_name(strategy):
    """A short name of a strategy instance (`"default"`, `"mirrored"`, ...)."""
    kinds = (
        (tf.distribute.MultiWorkerMirroredStrategy, "multi-worker"),
        (tf.distribute.MirroredStrategy, "mirrored"),
        (tf.distribute.OneDeviceStrategy, "one-device"),
        (tf.distribute.TPUStrategy, "tpu"),
    )
    for kind, name in kinds:
        if isinstance(strategy, kind):
            return name
    return "default"


def describe(strategy):
    """What a strategy runs on: `{"strategy", "replicas", "workers", "worker_index"}`."""
    return {
        "strategy": strategy_name(strategy),
        "replicas": int(strategy.num_replicas_in_sync),
        "workers": worker_count(strategy),
        "worker_index": worker_index(strategy),
    }


def worker_count(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and resolver:
        spec = resolver.cluster_spec().as_dict()
        return max(1, sum(len(spec.get(role, [])) for role in ("chief", "worker")))
    return 1


def worker_index(strategy):
    """This process's index among the workers (the chief first)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or not resolver:
        return 0
    spec = resolver.cluster_spec().as_dict()
    task_type, task_id = resolver.task_type, resolver.task_id or 0
    if task_type == "chief":
        return 0
    return task_id + (1 if spec.get("chief") else 0)


def is_chief(strategy):
    """Whether this process writes the outputs (checkpoints, logs, saved models)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or not resolver:
        return True
    task_type = resolver.task_type
    has_chief = bool(resolver.cluster_spec().as_dict().get("chief"))
    return task_type is None or task_type == "chief" or (
        not has_chief and task_type == "worker" and (resolver.task_id or 0) == 0
    )


def shard_examples(examples, input_context):
    """The examples of one input pipeline (worker): `i, i+n, ...` for pipeline `i` of `n`.

    Args:
        examples: `Examples` columns or an unbatched `tf.data.Dataset`.
        input_context: a `tf.distribute.InputContext`, or None (no sharding).
    """
    if input_context is None or input_context.num_input_pipelines == 1:
        return examples
    count, index = input_context.num_input_pipelines, input_context.input_pipeline_id
    if isinstance(examples, tf.data.Dataset):
        return examples.shard(count, index)
    from kerabert.data.tables import Examples

    if not isinstance(examples, Examples):
        examples = Examples(examples)
    return examples.take(range(index, len(examples), count))


def distribute_dataset(strategy, dataset_fn, global_batch_size):
    """A dataset for `model.fit` under `strategy`, from `dataset_fn(batch_size, context)`.

    `dataset_fn` builds one input pipeline: given the per-replica batch size and a
    `tf.distribute.InputContext` (None without distribution), it returns batches of
    that size from its shard (see `shard_examples`). With one replica it is called
    once with the global batch size.

    Args:
        strategy: a `tf.distribute.Strategy`.
        dataset_fn: `(batch_size, input_context) -> tf.data.Dataset`.
        global_batch_size: examples per step over all replicas; must divide evenly.

    Returns:
        A `tf.data.Dataset` or a `tf.distribute.DistributedDataset`.
    """
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise ValueError(
            f"the global batch size {global_batch_size} is not a multiple of the "
            f"{replicas} replicas of the {strategy_name(strategy)} strategy"
        )
    if replicas == 1 and worker_count(strategy) == 1:
        return dataset_fn(global_batch_size, None)

    def pipeline(context):
        dataset = dataset_fn(context.get_per_replica_batch_size(global_batch_size), context)
        options = tf.data.Options()
        # Sharded by example already; tf.data must not shard again.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return dataset.with_options(options)

    return strategy.distribute_datasets_from_function(pipeline)


def tpu_dataset_options():
    """`make_dataset` options that give TPUs static shapes: fixed length, whole batches."""
    return {"length_mode": "fixed", "drop_remainder": True, "repeat": True}


def check_static_dataset(dataset, batch_size=None, sequence_length=None):
    """Raise `ValueError` unless every tensor of `dataset` has a static shape and a
    numeric dtype (what a TPU, or XLA without recompiling, needs).

    Args:
        dataset: a batched `tf.data.Dataset`.
        batch_size: the expected (per-replica) batch dimension, if known.
        sequence_length: the expected length of per-token tensors, if known.
    """
    problems = []

    def check(path, spec):
        name = "/".join(str(p) for p in path) or "element"
        if spec.dtype == tf.string:
            problems.append(f"{name}: strings cannot go to the device")
        if isinstance(spec, tf.RaggedTensorSpec):
            problems.append(f"{name}: ragged, not a dense tensor")
        shape = spec.shape
        if shape.rank is None or any(d is None for d in shape):
            problems.append(f"{name}: dynamic shape {shape}")
            return
        if batch_size is not None and shape.rank and shape[0] != batch_size:
            problems.append(f"{name}: batch dimension {shape[0]}, expected {batch_size}")
        if sequence_length is not None and shape.rank >= 2 and name.split("/")[-1] in (
            "token_ids", "segment_ids", "padding_mask"
        ) and shape[1] != sequence_length:
            problems.append(f"{name}: length {shape[1]}, expected {sequence_length}")

    for path, spec in _flatten_with_paths(dataset.element_spec):
        check(path, spec)
    if problems:
        raise ValueError("dataset not fit for a TPU: " + "; ".join(problems))
    return True


def _flatten_with_paths(structure, prefix=()):
    if isinstance(structure, dict):
        for key, value in structure.items():
            yield from _flatten_with_paths(value, prefix + (key,))
    elif isinstance(structure, (tuple, list)):
        for i, value in enumerate(structure):
            yield from _flatten_with_paths(value, prefix + (i,))
    else:
        yield prefix, structure


@contextlib.contextmanager
def multi_worker_fit(model, strategy, build_batch):
    """Let Keras 3 `fit`/`evaluate` run `model` under `MultiWorkerMirroredStrategy`.

    Keras 3.15's TensorFlow trainer has two multi-worker faults this works around,
    for the duration of the `with` block only:

    - Its logs (loss, metrics: scalars per replica) are averaged over workers with
      `strategy.reduce("MEAN", value, axis=0)`, which needs a leading axis ("Invalid
      reduction dimension 0 for input with 0 dimensions"; the reduction is hard-coded,
      `distribute_reduction_method` is ignored). Here every step returns its logs with
      a leading axis of 1, so that reduction is the mean over the workers, a scalar.
    - Its first-call symbolic build averages a whole data batch over workers with
      `strategy.reduce`, which fails on a nested batch (and would all-reduce token
      ids). Here the model is built on one local batch instead, and `fit` takes the
      strategy from the enclosing scope.

    With any other strategy this does nothing.

    Args:
        model: a compiled `keras.Model` built in `strategy.scope()`.
        strategy: the strategy it trains under.
        build_batch: a callable giving one local `(features, targets)` batch (only
            called under `MultiWorkerMirroredStrategy`).
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        yield model
        return
    import keras

    def with_leading_axis(step):
        def wrapped(data):
            return keras.tree.map_structure(lambda v: tf.expand_dims(v, 0), step(data))

        return wrapped

    with strategy.scope():
        compat.symbolic_build(model, build_batch())
    saved_strategy = compat.distribute_strategy(model)
    instance = vars(model)
    # The step methods are replaced on this instance only, and restored below.
    instance["train_step"] = with_leading_axis(model.train_step)
    instance["test_step"] = with_leading_axis(model.test_step)
    compat.set_distribute_strategy(model, None)  # skips Keras' own symbolic build
    model.train_function = model.test_function = None
    try:
        with strategy.scope():
            yield model
    finally:
        instance.pop("train_step", None)
        instance.pop("test_step", None)
        compat.set_distribute_strategy(model, saved_strategy)
        model.train_function = model.test_function = None
