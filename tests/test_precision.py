"""16-bit precisions that would abort TensorFlow's oneDNN kernels are refused with a reason."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from kerabert.precision import (
    UnsupportedPrecisionError,
    check_precision,
    cpu_flags,
    onednn_enabled,
    precision_problem,
)
from tests.training_helpers import TESTS, subprocess_env

AVX512 = {"avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq"}
SAPPHIRE_RAPIDS = AVX512 | {"avx512_bf16", "avx512_fp16", "amx_bf16"}


def test_float16_needs_avx512_fp16_and_suggests_bfloat16():
    problem = precision_problem("mixed_float16", flags=AVX512 | {"avx512_bf16"})
    assert "lacks AVX512-FP16" in problem and "avx512_fp16" in problem
    assert "'mixed_bfloat16' or 'float32'" in problem and "TF_ENABLE_ONEDNN_OPTS=0" in problem
    assert precision_problem("mixed_float16", flags=SAPPHIRE_RAPIDS) is None


def test_bfloat16_needs_avx512_and_is_not_suggested_without_it():
    problem = precision_problem("mixed_bfloat16", flags={"avx", "avx2", "fma"})
    assert "lacks AVX-512" in problem and "avx512f" in problem
    problem = precision_problem("mixed_float16", flags={"avx", "avx2", "fma"})
    assert "mixed_bfloat16" not in problem.split("Use", 1)[1]
    assert precision_problem("mixed_bfloat16", flags=AVX512) is None


def test_a_onednn_isa_cap_counts_like_missing_flags():
    problem = precision_problem("mixed_float16", flags=SAPPHIRE_RAPIDS,
                                max_isa="avx512_core_bf16")
    assert "ONEDNN_MAX_CPU_ISA=avx512_core_bf16 caps oneDNN below AVX512-FP16" in problem
    assert precision_problem("mixed_bfloat16", flags=SAPPHIRE_RAPIDS, max_isa="AVX2")
    for enough in ("AVX512_CORE_FP16", "AVX512_CORE_AMX", "ALL", "UNKNOWN_NAME"):
        assert precision_problem("mixed_float16", flags=SAPPHIRE_RAPIDS, max_isa=enough) is None


@pytest.mark.parametrize("setting", [{"gpu": True}, {"onednn": False}])
def test_gpus_tpus_and_onednn_off_are_not_refused(setting):
    assert precision_problem("mixed_float16", flags={"avx2"}, **setting) is None


def test_float32_unknown_cpus_and_unknown_policies_are_not_refused():
    assert precision_problem("float32", flags=set()) is None
    assert precision_problem("mixed_float16", flags=None) is None  # e.g. not Linux x86
    assert precision_problem("bfloat16", flags=set()) is None  # not a mixed policy we know


def test_cpu_flags_reads_proc_cpuinfo_format(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 avx512f\n\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512f"}
    assert cpu_flags(tmp_path / "missing") is None
    check_precision("float32")


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=240, env=subprocess_env(**env))


_TINY_FLOAT16_FORWARD = """
    import sys
    sys.path.insert(0, {tests!r})
    from conftest import TINY_VOCABULARY, make_tiny_backbone
    from kerabert.heads.classification import SentimentHead
    from kerabert.task import build_model
    from kerabert.tokenizer import BertTokenizer
    from kerabert.training import precision_policy
    from training_helpers import tiny_data

    with precision_policy("mixed_float16"):
        model = build_model(SentimentHead(labels=["neg", "pos"]),
                            (make_tiny_backbone(), BertTokenizer(TINY_VOCABULARY)),
                            sequence_length=32, compile=False)
    features = next(iter(model.make_dataset(tiny_data(8), batch_size=8, with_targets=False)))
    model.predict_on_batch(features)
    print("ran")
"""


def _intel_cpu():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return "GenuineIntel" in f.read(4096)
    except OSError:
        return False


@pytest.mark.skipif(not onednn_enabled(), reason="oneDNN kernels are off in this TensorFlow")
@pytest.mark.skipif(not _intel_cpu(), reason="the abort was seen on an Intel Xeon (capped with "
                    "ONEDNN_MAX_CPU_ISA); on the AMD EPYC (AVX2) machine, with oneDNN on, the "
                    "same float16 forward pass ran (2026-12-02), so the check is conservative there")
def test_the_abort_it_prevents_is_real():
    # If TensorFlow stops aborting here, the check (and its docs) should go.
    done = _run(_TINY_FLOAT16_FORWARD.format(tests=str(TESTS)), ONEDNN_MAX_CPU_ISA="AVX2")
    assert done.returncode < 0 and "ran" not in done.stdout, (done.returncode, done.stderr[-2000:])
    # An uncaught C++ exception (dnnl::error), sometimes thrown by two threads at once.
    assert "terminate called" in done.stderr


@pytest.mark.slow
def test_the_cli_reports_it_before_building_anything(tmp_path):
    from tests.training_helpers import save_tiny_checkpoint

    data = tmp_path / "train.tsv"
    data.write_text("text\tlabel\ngood film\tpos\nbad film\tneg\n", encoding="utf-8")
    done = _run(f"""
        import sys
        from kerabert.cli import main
        sys.exit(main(["train", "--head", "sentiment", "--train", {str(data)!r},
                       "--backbone", {save_tiny_checkpoint(tmp_path / "backbone")!r},
                       "--precision", "mixed_float16", "--output", {str(tmp_path / "run")!r}]))
    """, ONEDNN_MAX_CPU_ISA="AVX2")
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "precision 'mixed_float16' cannot run here" in done.stderr
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in done.stderr or "lacks AVX512-FP16" in done.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not onednn_enabled(), reason="oneDNN kernels are off in this TensorFlow")
def test_training_api_raises_a_value_error(monkeypatch):
    from kerabert.training import train

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # read by the check, not by TensorFlow
    with pytest.raises(UnsupportedPrecisionError, match="cannot run here") as raised:
        train("sentiment", "never-read.tsv", precision="mixed_float16")
    assert isinstance(raised.value, ValueError)


@pytest.mark.skipif(not onednn_enabled(), reason="oneDNN kernels are off in this TensorFlow")
def test_tuning_refuses_it_once_before_any_trial(monkeypatch, tmp_path):
    from kerabert.tuning import tune

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    with pytest.raises(UnsupportedPrecisionError, match="mixed_bfloat16"):
        tune("sentiment", "never-read.tsv", "never-read.tsv", output_dir=tmp_path / "tune",
             precision="mixed_bfloat16")
    assert not (tmp_path / "tune").exists()


def test_auto_precision_picks_bfloat16_only_where_it_is_native():
    from kerabert.precision import auto_precision

    avx2 = {"avx", "avx2", "fma"}
    avx512 = {"avx512f", "avx512bw", "avx512vl", "avx512dq"}
    assert auto_precision(flags=avx2) == "float32"  # bf16 would be emulated: slower
    assert auto_precision(flags=avx512) == "float32"  # AVX-512 without BF16 units
    assert auto_precision(flags=avx512 | {"avx512_bf16"}) == "mixed_bfloat16"
    assert auto_precision(flags=avx512 | {"amx_bf16"}) == "mixed_bfloat16"
    assert auto_precision(flags=avx512 | {"amx_bf16"}, onednn=False) == "float32"
    assert auto_precision(flags=None) == "float32"
    assert auto_precision(flags=avx2, tpu=True) == "mixed_bfloat16"
    assert auto_precision(flags=avx2, gpu_compute_capability=(8, 0)) == "mixed_bfloat16"
    assert auto_precision(flags=avx2, gpu_compute_capability=(7, 5)) == "mixed_float16"
    assert auto_precision(flags=avx2, gpu_compute_capability=(6, 1)) == "float32"


def test_resolve_precision_here_gives_a_policy_this_machine_runs():
    from kerabert.precision import cpu_flags, precision_problem_here, resolve_precision

    chosen = resolve_precision("auto")
    assert chosen in ("float32", "mixed_float16", "mixed_bfloat16")
    assert precision_problem_here(chosen) is None
    if not {"avx512_bf16", "amx_bf16"} & (cpu_flags() or set()):
        assert chosen == "float32"
    assert resolve_precision("mixed_float16") == "mixed_float16"  # given: kept
