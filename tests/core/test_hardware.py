from __future__ import annotations

import dataclasses
import json

import pytest

from seekforge.core.hardware import Hardware, dependency_versions, hardware, read_cpu_flags

# /proc/cpuinfo of the two kinds of machine this project runs on, cut to what matters
AVX2_EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni
"""
AVX512_EPYC = """processor\t: 0
model name\t: AMD EPYC 9B14
flags\t\t: fpu avx fma avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni avx512_vbmi2
"""
SAPPHIRE_RAPIDS = """model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: avx2 avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_tile amx_int8 amx_bf16
"""
GRAVITON = """processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm sve
"""


def machine(text: str, cap: str | None = None, arch: str = "x86_64") -> Hardware:
    cpu, flags = read_cpu_flags(text)
    return Hardware(cpu=cpu, machine=arch, cores=2, memory_bytes=24 * 2**30, flags=flags, isa_cap=cap)


def test_an_avx2_only_cpu_has_neither_vnni_nor_bf16() -> None:
    hw = machine(AVX2_EPYC)
    assert hw.cpu == "AMD EPYC 7B12" and hw.avx2 and not hw.avx512
    assert not hw.vnni and not hw.bf16 and not hw.amx
    assert hw.isa == "AVX2"
    assert hw.summary() == "AMD EPYC 7B12, AVX2, 2 cores, 24 GiB, no GPU"


def test_avx512_with_vnni_and_bf16() -> None:
    hw = machine(AVX512_EPYC)
    assert hw.avx512 and hw.vnni and hw.bf16 and not hw.amx
    assert hw.isa == "AVX-512 (VNNI, BF16)"
    assert machine(SAPPHIRE_RAPIDS).isa == "AVX-512 (VNNI, BF16, AMX)"


def test_arm_reports_neon() -> None:
    hw = machine(GRAVITON, arch="aarch64")
    assert hw.isa == "NEON + SVE" and not hw.avx2 and not hw.vnni and not hw.bf16


@pytest.mark.parametrize(
    ("cap", "isa", "vnni", "bf16"),
    [
        ("AVX2", "AVX2 (capped at AVX2)", False, False),
        ("avx512_core", "AVX-512 (capped at avx512_core)", False, False),
        ("AVX512_CORE_VNNI", "AVX-512 (VNNI, capped at AVX512_CORE_VNNI)", True, False),
        ("ALL", "AVX-512 (VNNI, BF16, capped at ALL)", True, True),
    ],
)
def test_the_onednn_cap_limits_what_counts(cap: str, isa: str, vnni: bool, bf16: bool) -> None:
    hw = machine(AVX512_EPYC, cap=cap)
    assert (hw.isa, hw.vnni, hw.bf16) == (isa, vnni, bf16)


def test_to_dict_holds_the_facts_and_the_judgements() -> None:
    record = machine(AVX2_EPYC).to_dict()
    assert record["vnni"] is False and record["isa"] == "AVX2" and "avx2" in record["flags"]
    assert json.loads(json.dumps(record)) == record


def test_this_machine_is_read_and_the_cap_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    hw = hardware()
    assert hw.cores >= 1 and hw.machine and hw.cpu
    try:
        with monkeypatch.context() as env:  # the variable as it was comes back on leaving, set or not
            env.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
            hardware.cache_clear()
            capped = hardware()
            assert capped.isa_cap == "AVX2" and not capped.vnni and not capped.bf16 and not capped.avx512
    finally:
        hardware.cache_clear()
    assert dataclasses.replace(hardware(), gpus=()) == dataclasses.replace(hw, gpus=())


def test_versions_name_every_dependency() -> None:
    versions = dependency_versions()
    assert versions["python"] and versions["seekforge"]
    assert versions["torch"] is not None and versions["torch"].startswith("2.13.0")
    assert {"onnxruntime", "openvino", "optuna", "fastapi"} <= set(versions)


@pytest.mark.parametrize(("here", "reduce_range", "warned"), [(AVX2_EPYC, False, True), (AVX512_EPYC, False, False),
                                                              (AVX2_EPYC, True, False)])  # fmt: skip
def test_an_int8_export_gated_with_vnni_warns_on_a_cpu_without(
    monkeypatch: pytest.MonkeyPatch, here: str, reduce_range: bool, warned: bool
) -> None:
    from seekforge.core import hardware as hw_module

    monkeypatch.setattr(hw_module, "hardware", lambda: machine(here))
    record = {"file": "onnx/model-int8.onnx", "precision": "int8", "reduce_range": reduce_range,
              "hardware": machine(AVX512_EPYC).to_dict()}  # fmt: skip
    why = hw_module.int8_portability(record)
    assert (why is not None) is warned
    if why:
        assert "passed its parity gate on a CPU with VNNI (AVX-512 (VNNI, BF16)); this one has none (AVX2)" in why
        assert "--reduce-range on" in why
    assert hw_module.int8_portability({**record, "precision": "fp32"}) is None
