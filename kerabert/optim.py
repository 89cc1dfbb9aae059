"""kerabert's optimizer: AdamW with fused updates, row-sparse embedding updates and
per-variable learning-rate multipliers.

Keras' `AdamW` on TensorFlow updates each variable with about ten separate element-wise
ops (each a pass over the variable and its two moments) plus a weight-decay pass, and
densifies the word-embedding gradient (a `tf.IndexedSlices` of the batch's rows) into a
30,522 x 384 tensor every step. At SST-2 lengths that update was a third of the step.
Here the dense update is TensorFlow's fused `ResourceApplyAdam` kernel (one pass,
multi-threaded; the same formula as Keras' Adam), with the decoupled weight decay
applied in the same step, and an embedding gradient updates only the rows the batch
used (`sparse_updates=True`: "lazy" Adam, as TF Addons' `LazyAdam`; rows that no
example touched keep their moments and are not decayed this step).

This module also owns the BERT fine-tuning defaults built on it: the learning-rate
schedule (`WarmupLinearDecay`: linear warmup, then linear decay to zero), layer-wise
learning-rate decay (`layerwise_multipliers`), `make_optimizer` (no weight decay on
LayerNorm and bias variables, global-norm clipping at 1.0) and `compile_task` (a task
compiled with its head's loss and metrics and this optimizer).
"""

from __future__ import annotations

import math
import re

import keras
import tensorflow as tf



@keras.saving.register_keras_serializable(package="kerabert")
class AdamW(keras.optimizers.AdamW):
    """AdamW with a fused dense update, lazy row updates for sparse gradients, and
    optional per-variable learning-rate multipliers (layer-wise decay).

    Args:
        multipliers: `[[regex, factor], ...]`: a variable whose `path` matches a regex
            (first match wins) trains, and is decayed, at `factor` times the scheduled
            rate; others at 1.
        sparse_updates: update only the rows present in a `tf.IndexedSlices` gradient
            (the word embeddings); `False` densifies it as Keras does.
        **kwargs: `keras.optimizers.AdamW` arguments (`amsgrad` is not supported).

    Example:
    ```python
    optimizer = AdamW(learning_rate=5e-5, weight_decay=0.01,
                      multipliers=[["^transformer_layer_0/", 0.5]])
    ```
    """

    def __init__(self, multipliers=(), sparse_updates=True, **kwargs):
        if kwargs.get("amsgrad"):
            raise ValueError("kerabert's AdamW does not implement amsgrad")
        super().__init__(**kwargs)
        self.multipliers = [[str(p), float(f)] for p, f in multipliers]
        self.sparse_updates = bool(sparse_updates)

    def build(self, var_list):
        super().build(var_list)
        patterns = [(re.compile(p), f) for p, f in self.multipliers]
        self._factors = [
            next((f for p, f in patterns if p.search(v.path)), 1.0) for v in var_list
        ]

    def _clip_gradients(self, grads):
        # Keras' global-norm clipping multiplies each gradient by the scale, which turns
        # an IndexedSlices into a dense tensor (the whole embedding table): clip the
        # (deduplicated) slices' values instead.
        if not self.global_clipnorm or self.clipnorm or self.clipvalue:
            return super()._clip_gradients(grads)
        grads = [_deduplicated(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        norm = tf.linalg.global_norm([_values(g) for g in grads if g is not None])
        clip = tf.cast(self.global_clipnorm, norm.dtype)
        # As Keras: scale 1 below the limit; NaN/inf norms give NaN (caught downstream).
        scale = clip * tf.minimum(1.0 / norm, 1.0 / clip) + (norm - norm)
        return [None if g is None else _scaled(g, scale) for g in grads]

    def _apply_weight_decay(self, variables):
        pass  # applied per variable in `update_step`, at the variable's own rate

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype) * self._factors[index]
        m = _tf_variable(self._momentums[index])
        v = _tf_variable(self._velocities[index])
        variable = _tf_variable(variable)
        decay = None
        if self.weight_decay and self._use_weight_decay(variable):
            decay = tf.cast(self.weight_decay, dtype) * lr
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        epsilon = tf.cast(self.epsilon, dtype)
        if isinstance(gradient, tf.IndexedSlices) and self.sparse_updates:
            return _lazy_rows_update(variable, m, v, gradient, lr, decay, step,
                                     beta_1, beta_2, epsilon)
        gradient = tf.cast(tf.convert_to_tensor(gradient), dtype)
        if decay is not None:
            variable.assign_sub(variable * decay)
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=lr, beta1=beta_1, beta2=beta_2, epsilon=epsilon, grad=gradient,
            use_locking=False)

    def get_config(self):
        config = super().get_config()
        config["multipliers"] = self.multipliers
        config["sparse_updates"] = self.sparse_updates
        return config


def _tf_variable(variable):
    """The `tf.Variable` behind a Keras variable (the raw kernels take its handle)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def _deduplicated(gradient):
    """An IndexedSlices with each row once (repeated rows summed, as densifying would)."""
    rows, position = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
    return tf.IndexedSlices(values, rows, gradient.dense_shape)


def _values(gradient):
    return gradient.values if isinstance(gradient, tf.IndexedSlices) else gradient


def _scaled(gradient, scale):
    if isinstance(gradient, tf.IndexedSlices):
        values = gradient.values * tf.cast(scale, gradient.values.dtype)
        return tf.IndexedSlices(values, gradient.indices, gradient.dense_shape)
    return gradient * tf.cast(scale, gradient.dtype)


def _lazy_rows_update(variable, m, v, gradient, lr, decay, step, beta_1, beta_2, epsilon):
    """Adam (+ decoupled decay) on the rows a sparse gradient names, once per row."""
    gradient = _deduplicated(gradient)
    rows, values = gradient.indices, tf.cast(gradient.values, variable.dtype)
    m_rows = beta_1 * tf.gather(m, rows) + (1.0 - beta_1) * values
    v_rows = beta_2 * tf.gather(v, rows) + (1.0 - beta_2) * tf.square(values)
    alpha = lr * tf.sqrt(1.0 - tf.pow(beta_2, step)) / (1.0 - tf.pow(beta_1, step))
    weights = tf.gather(variable, rows)
    change = alpha * m_rows / (tf.sqrt(v_rows) + epsilon)
    if decay is not None:
        change += weights * decay
    return tf.group(
        m.scatter_update(tf.IndexedSlices(m_rows, rows)),
        v.scatter_update(tf.IndexedSlices(v_rows, rows)),
        variable.scatter_sub(tf.IndexedSlices(change, rows)),
    )


NO_DECAY = ("bias", "gamma", "beta")  # Keras names of bias and LayerNorm variables


@keras.saving.register_keras_serializable(package="kerabert")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak_learning_rate`, then linear decay to
    `end_learning_rate` at `total_steps` (constant after warmup if `total_steps` is None).

    Args:
        peak_learning_rate: the rate reached at the end of warmup.
        warmup_steps: steps of warmup.
        total_steps: the step at which the rate reaches `end_learning_rate`.
        end_learning_rate: the final rate.

    Example:
    ```python
    schedule = WarmupLinearDecay(5e-5, warmup_steps=100, total_steps=1000)
    ```
    """

    def __init__(self, peak_learning_rate, warmup_steps, total_steps=None,
                 end_learning_rate=0.0):
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = None if total_steps is None else int(total_steps)
        self.end_learning_rate = float(end_learning_rate)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        peak = self.peak_learning_rate
        warmup = float(max(self.warmup_steps, 1))
        rising = peak * tf.minimum(step + 1.0, warmup) / warmup
        if self.total_steps is None:
            return rising
        span = float(max(self.total_steps - self.warmup_steps, 1))
        done = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
        falling = peak + (self.end_learning_rate - peak) * done
        return tf.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "end_learning_rate": self.end_learning_rate,
        }


@keras.saving.register_keras_serializable(package="kerabert")
class LayerwiseAdamW(AdamW):
    """The name models saved before `kerabert.optim.AdamW` took multipliers itself
    stored; kept so that they load. New code uses `kerabert.optim.AdamW`."""


def layerwise_multipliers(model, decay):
    """`LayerwiseAdamW` multipliers: the head and pooler 1, transformer layer `i` (of
    `L`) `decay ** (L - i)`, embeddings `decay ** (L + 1)`.

    Args:
        model: a `kerabert.Task` (its backbone's `num_layers` is read).
        decay: the factor between adjacent layers, in (0, 1].
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"layer-wise learning-rate decay must be in (0, 1], got {decay}")
    layers = model.backbone.num_layers
    rules = [[f"^transformer_layer_{i}/", decay ** (layers - i)] for i in range(layers)]
    rules.append(["^(token_embedding|position_embedding|segment_embedding|"
                  "embeddings_layer_norm)/", decay ** (layers + 1)])
    return rules


def make_optimizer(learning_rate=5e-5, total_steps=None, warmup_ratio=0.1, warmup_steps=None,
                   weight_decay=0.01, clipnorm=1.0, layerwise_lr_decay=None, model=None,
                   sparse_updates=True):
    """AdamW with warmup + linear decay, no weight decay on LayerNorm and bias
    (`kerabert.optim.AdamW`: fused dense updates, row-sparse embedding updates).

    Args:
        learning_rate: the peak learning rate.
        total_steps: training steps (for the decay); None keeps the rate after warmup.
        warmup_ratio: warmup as a fraction of `total_steps` (if `warmup_steps` is None).
        warmup_steps: warmup steps.
        weight_decay: decoupled weight decay.
        clipnorm: global gradient-norm clipping (None or 0: off).
        layerwise_lr_decay: a factor in (0, 1] for layer-wise learning-rate decay
            (needs `model`); None: one rate for all layers.
        model: the `kerabert.Task` to train (for layer-wise decay).
        sparse_updates: update only the embedding rows a batch used (lazy Adam);
            `False` updates every row every step, as Keras' AdamW does.

    Example:
    ```python
    optimizer = make_optimizer(3e-5, total_steps=1000, layerwise_lr_decay=0.9,
                               model=model)
    ```
    """
    if warmup_steps is None:
        warmup_steps = int(math.ceil((total_steps or 0) * warmup_ratio))
    schedule = WarmupLinearDecay(learning_rate, warmup_steps, total_steps)
    multipliers = ()
    if layerwise_lr_decay is not None:
        if model is None:
            raise ValueError("layer-wise learning-rate decay needs the model")
        multipliers = layerwise_multipliers(model, layerwise_lr_decay)
    optimizer = AdamW(
        multipliers=multipliers,
        sparse_updates=sparse_updates,
        learning_rate=schedule,
        weight_decay=weight_decay,
        epsilon=1e-6,
        global_clipnorm=clipnorm or None,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY))
    return optimizer


def compile_task(model, optimizer=None, jit_compile=False, steps_per_execution=1,
                 **optimizer_options):
    """Compile a task with its head's loss and metrics and kerabert's optimizer.

    Under the `mixed_float16` policy Keras wraps the optimizer in a
    `LossScaleOptimizer` (dynamic loss scaling) by itself.
    """
    if optimizer is None:
        optimizer = make_optimizer(model=model, **optimizer_options)
    model.compile(
        optimizer=optimizer,
        loss=model.head.loss(),
        metrics=model.head.metrics(),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model
