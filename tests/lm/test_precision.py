"""Training precision: bf16 autocast only where the processor multiplies bfloat16 natively."""
import pytest
import torch

from prunelab.lm.precision import cpu_has_native_bf16, resolve_precision


@pytest.mark.parametrize("cpuinfo, native", [
    ("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n", False),                     # AVX2-only x86
    ("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw\n", False),                # AVX-512 without BF16
    ("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n", True),     # Cooper Lake / Sapphire Rapids
    ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", True),                    # Arm with the BF16 extension
    ("processor\t: 0\nFeatures\t: fp asimd crc32\n", False),
])
def test_bf16_instructions_are_read_from_the_processor_flags(tmp_path, cpuinfo, native):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    assert cpu_has_native_bf16(str(path)) is native


def test_no_cpuinfo_means_fp32(tmp_path):
    assert cpu_has_native_bf16(str(tmp_path / "absent")) is False


def test_auto_follows_the_processor_and_explicit_choices_stand():
    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    if torch.cuda.is_available():
        assert resolve_precision("auto", "cuda") == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")


def test_an_unknown_precision_names_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown precision 'fp8'; expected one of auto, bf16, fp32"):
        resolve_precision("fp8", "cpu")
