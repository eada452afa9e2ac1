"""``seekforge env``: what this machine is and what is installed, since every figure depends on both."""

from __future__ import annotations

from rich.table import Table

from seekforge.cli._common import JsonFlag, out, print_json


def env_command(as_json: JsonFlag = False) -> None:
    """Show the CPU and its instruction sets (AVX2, AVX-512, VNNI, BF16, AMX), cores, memory, GPUs, versions.

    INT8 and bf16 behave differently with and without VNNI and BF16, so every figure depends on them.
    """
    from seekforge.core.hardware import dependency_versions, hardware

    hw = hardware()
    versions = dependency_versions()
    if as_json:
        print_json({"hardware": hw.to_dict(), "versions": versions})
        return
    machine = Table("fact", "value", title="machine")
    memory = f"{hw.memory_bytes / 2**30:.1f} GiB" if hw.memory_bytes else "unknown"
    machine.add_row("cpu", f"{hw.cpu} ({hw.machine})")
    machine.add_row("isa", hw.isa)
    for name, present, meaning in (
        ("avx2", hw.avx2, ""),
        ("avx-512", hw.avx512, ""),
        ("vnni", hw.vnni, "int8 without saturation" if hw.vnni else "int8 saturates: exports use 7-bit weights"),
        ("bf16", hw.bf16, "" if hw.bf16 else "bf16 is emulated: training falls back to fp32"),
        ("amx", hw.amx, ""),
    ):
        machine.add_row(name, ("yes" if present else "no") + (f" ({meaning})" if meaning else ""))
    if hw.isa_cap:
        machine.add_row("isa cap", f"ONEDNN_MAX_CPU_ISA={hw.isa_cap}")
    machine.add_row("cores", str(hw.cores))
    machine.add_row("memory", memory)
    machine.add_row("gpu", ", ".join(hw.gpus) or "none")
    out.print(machine)
    table = Table("package", "version", title="versions")
    for name, version in versions.items():
        table.add_row(name, version or "[dim]not installed[/]")
    out.print(table)
