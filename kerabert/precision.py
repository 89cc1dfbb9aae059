"""Whether this machine can compute in a 16-bit precision without TensorFlow aborting.

With its oneDNN kernels on (TensorFlow's default on x86 CPUs with AVX-512 VNNI and
newer), a float16 matmul on a CPU without AVX512-FP16 throws an uncaught `dnnl::error`
("could not create a primitive descriptor for the matmul primitive") that aborts the
whole process; bfloat16 needs AVX-512 at least. Seen here by capping oneDNN with
`ONEDNN_MAX_CPU_ISA`: float16 aborted at AVX2, AVX512_CORE and AVX512_CORE_BF16 and
ran at AVX512_CORE_FP16; bfloat16 aborted at AVX2 only. With oneDNN off
(`TF_ENABLE_ONEDNN_OPTS=0`) or on a GPU, both run. `check_precision` turns the abort
into an error that says so before anything is built.

This module owns the list of precisions (`PRECISIONS`; `"auto"` picks one of them) and
the dtype policy a model is built under (`precision_policy`). It imports TensorFlow only
inside the functions that need it, so the command line reads `PRECISIONS` for `--help`
without loading TensorFlow.
"""

from __future__ import annotations

import contextlib
import os

# The Keras dtype policies kerabert trains and exports in; "auto" chooses one of them.
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
AUTO = "auto"

# oneDNN's ISA names (ONEDNN_MAX_CPU_ISA), lowest first, as far as they matter here.
_ISA_ORDER = (
    "SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16", "AVX10_1_512_AMX",
    "AVX512_CORE_AMX", "AVX10_1_512_AMX_FP16", "AVX512_CORE_AMX_FP16", "AVX10_2_512",
    "AVX10_2_512_AMX_2", "ALL", "DEFAULT",
)
# The lowest ISA (and the CPU flags that give it) each 16-bit precision needs.
_NEEDS = {
    "mixed_float16": ("AVX10_1_512", {"avx512_fp16"}, "AVX512-FP16 (Sapphire Rapids or newer)"),
    "mixed_bfloat16": ("AVX512_CORE", {"avx512f", "avx512bw", "avx512vl", "avx512dq"},
                       "AVX-512"),
}


class UnsupportedPrecisionError(ValueError):
    """The requested precision would abort TensorFlow on this machine."""


def _tf():
    import tensorflow as tf

    return tf


def check_precision_name(precision, *, allow_auto=True):
    """Raise `ValueError` unless `precision` is one of `PRECISIONS` (or `"auto"`)."""
    allowed = ((AUTO,) if allow_auto else ()) + PRECISIONS
    if precision not in allowed:
        raise ValueError(f"precision must be one of {allowed}, got {precision!r}")
    return precision


@contextlib.contextmanager
def precision_policy(precision):
    """Set Keras' global dtype policy for building a model, and restore it after.

    `mixed_float16` / `mixed_bfloat16` compute in 16 bits and keep float32 variables;
    heads keep their logits in float32. The policy must be set before layers are built.
    """
    import keras

    check_precision_name(precision, allow_auto=False)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags, or `None` where they cannot be read (not Linux x86)."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def onednn_enabled():
    """Whether TensorFlow's oneDNN (MKL) CPU kernels are on in this process."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # private API: assume TensorFlow's x86 default
        return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") not in ("0", "false", "False")


def precision_problem(precision, *, flags, max_isa=None, onednn=True, gpu=False):
    """Why `precision` would abort here, or `None` if it should run.

    Args:
        precision: a Keras dtype policy name.
        flags: the CPU's flags (`cpu_flags()`); `None` when unknown (not checked).
        max_isa: the `ONEDNN_MAX_CPU_ISA` cap, if set.
        onednn: whether oneDNN kernels are on.
        gpu: whether a GPU or TPU runs the model.
    """
    if precision not in _NEEDS or gpu or not onednn or flags is None:
        return None
    lowest_isa, needed_flags, name = _NEEDS[precision]
    capped = (max_isa or "").upper()
    if needed_flags - flags:
        reason = f"this CPU lacks {name} (no {', '.join(sorted(needed_flags - flags))} flag)"
    elif capped in _ISA_ORDER and _ISA_ORDER.index(capped) < _ISA_ORDER.index(lowest_isa):
        reason = f"ONEDNN_MAX_CPU_ISA={max_isa} caps oneDNN below {name}"
    else:
        return None
    return (
        f"precision {precision!r} cannot run here: {reason}, and TensorFlow's oneDNN kernels "
        "abort the process on such matmuls instead of raising an error. Use "
        + ("'mixed_bfloat16' or " if precision == "mixed_float16"
           and not precision_problem("mixed_bfloat16", flags=flags, max_isa=max_isa) else "")
        + "'float32', run on a GPU, or turn oneDNN off with TF_ENABLE_ONEDNN_OPTS=0 "
        "(slower, but 16-bit matmuls then run)."
    )


def precision_problem_here(precision, *, accelerator=False):
    """`precision_problem` for this process: its CPU, oneDNN setting and devices.

    Args:
        precision: a Keras dtype policy name.
        accelerator: the model runs on a TPU (GPUs are detected).
    """
    return precision_problem(
        precision,
        flags=cpu_flags(),
        max_isa=os.environ.get("ONEDNN_MAX_CPU_ISA"),
        onednn=onednn_enabled(),
        gpu=accelerator or bool(_tf().config.list_physical_devices("GPU")),
    )


def check_precision(precision, *, accelerator=False):
    """Raise `UnsupportedPrecisionError` if `precision` would abort TensorFlow here.

    Example:

    >>> check_precision("float32")  # always fine
    """
    problem = precision_problem_here(precision, accelerator=accelerator)
    if problem:
        raise UnsupportedPrecisionError(problem)


# CPU flags of native bfloat16 arithmetic (AVX512-BF16 dot products, AMX tiles).
NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


def auto_precision(*, flags, onednn=True, gpu_compute_capability=None, tpu=False):
    """The fastest precision that computes natively here (what `precision="auto"` picks).

    bfloat16 only where the hardware does bfloat16 arithmetic: a TPU, a GPU of compute
    capability 8.0 or newer, or a CPU with AVX512-BF16 or AMX and oneDNN on. A GPU of
    capability 7.x gets float16 (with loss scaling); anything else float32. On a CPU
    without native bfloat16 (e.g. AVX2 only) a bfloat16 matmul is emulated and slower
    than float32, so "auto" never picks it there.

    Args:
        flags: the CPU's flags (`cpu_flags()`), `None` when unknown.
        onednn: whether oneDNN kernels are on.
        gpu_compute_capability: `(major, minor)` of the GPU, or `None` without one.
        tpu: the model runs on a TPU.
    """
    if tpu:
        return "mixed_bfloat16"
    if gpu_compute_capability is not None:
        major = gpu_compute_capability[0]
        return "mixed_bfloat16" if major >= 8 else "mixed_float16" if major >= 7 else "float32"
    if onednn and flags and NATIVE_BF16_FLAGS & flags and not precision_problem(
            "mixed_bfloat16", flags=flags, max_isa=os.environ.get("ONEDNN_MAX_CPU_ISA")):
        return "mixed_bfloat16"
    return "float32"


def resolve_precision(precision, *, accelerator=False):
    """`precision` itself, or for `"auto"` the choice of `auto_precision` here.

    Args:
        precision: `"auto"` or a Keras dtype policy name.
        accelerator: the model runs on a TPU.
    """
    if precision != AUTO:
        return precision
    tf = _tf()
    capability = None
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        capability = details.get("compute_capability", (0, 0))
    return auto_precision(flags=cpu_flags(), onednn=onednn_enabled(),
                          gpu_compute_capability=capability, tpu=accelerator)
