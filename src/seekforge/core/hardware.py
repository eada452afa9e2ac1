"""What this machine is: CPU model and instruction sets, cores, memory, GPUs, and the versions of what
seekforge uses. Figures depend on it (INT8 without VNNI saturates; bf16 without AVX-512 BF16 or AMX is
emulated), so every benchmark, optimize and compress record and every export's parity record carries it.

The instruction sets are the CPU's own flags, capped by ``ONEDNN_MAX_CPU_ISA`` where it is set: oneDNN,
and so torch and OpenVINO, then use no more than the cap allows, and seekforge decides as they do.

Example:
    >>> from seekforge.core.hardware import hardware
    >>> hw = hardware()
    >>> hw.isa, hw.vnni, hw.bf16
    ('AVX-512 (VNNI, BF16)', True, True)
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ISA_CAP_VARIABLE", "Hardware", "dependency_versions", "hardware", "int8_portability", "read_cpu_flags"]

#: oneDNN's variable that caps the instruction sets its kernels use (``AVX2``, ``AVX512_CORE_VNNI``, ...)
ISA_CAP_VARIABLE = "ONEDNN_MAX_CPU_ISA"

# oneDNN's ISA levels, lowest first; a cap allows its level and those below it.
_LEVELS = (
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX10_1_512",
    "AVX512_CORE_FP16",
    "AVX10_1_512_AMX",
    "AVX512_CORE_AMX",
    "AVX10_1_512_AMX_FP16",
    "AVX512_CORE_AMX_FP16",
)
# /proc/cpuinfo flags worth reporting, as the kernel spells them
_FLAGS = (
    "avx2",
    "fma",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "sve",
)


@dataclass(frozen=True)
class Hardware:
    """Facts about this machine that figures depend on.

    Attributes:
        cpu: The CPU's model name.
        machine: ``x86_64``, ``aarch64``, ...
        cores: Cores this process may run on.
        memory_bytes: Physical memory, when the system says.
        flags: Instruction-set flags the CPU reports (a subset of ``/proc/cpuinfo``'s, see ``_FLAGS``).
        isa_cap: ``ONEDNN_MAX_CPU_ISA`` when set: the most the math libraries are allowed to use.
        gpus: Names of the CUDA devices torch sees (empty without torch or without a GPU).
    """

    cpu: str
    machine: str
    cores: int
    memory_bytes: int | None
    flags: frozenset[str]
    isa_cap: str | None = None
    gpus: tuple[str, ...] = field(default=())

    def _allowed(self, level: str) -> bool:
        cap = (self.isa_cap or "").upper()
        if cap in ("", "ALL", "DEFAULT") or cap not in _LEVELS:
            return True
        return _LEVELS.index(level) <= _LEVELS.index(cap)

    @property
    def avx2(self) -> bool:
        return "avx2" in self.flags and self._allowed("AVX2")

    @property
    def avx512(self) -> bool:
        return {"avx512f", "avx512bw", "avx512vl"} <= self.flags and self._allowed("AVX512_CORE")

    @property
    def vnni(self) -> bool:
        """INT8 dot products without saturation: AVX-512 VNNI, or AVX-VNNI on AVX2 CPUs."""
        return ("avx512_vnni" in self.flags and self._allowed("AVX512_CORE_VNNI")) or (
            "avx_vnni" in self.flags and self._allowed("AVX2_VNNI")
        )

    @property
    def bf16(self) -> bool:
        """bf16 arithmetic in hardware (AVX-512 BF16 or AMX); elsewhere the math libraries emulate it."""
        return ("avx512_bf16" in self.flags and self._allowed("AVX512_CORE_BF16")) or self.amx

    @property
    def amx(self) -> bool:
        return {"amx_tile", "amx_int8"} <= self.flags and self._allowed("AVX512_CORE_AMX")

    @property
    def isa(self) -> str:
        """The widest vector instruction set in use, with its INT8/bf16 extensions: ``AVX-512 (VNNI, BF16)``,
        ``AVX2``, ``AVX2 (VNNI)``, ``NEON``, ..."""
        extras = [name for name, present in (("VNNI", self.vnni), ("BF16", self.bf16), ("AMX", self.amx)) if present]
        if self.avx512:
            base = "AVX-512"
        elif self.avx2:
            base = "AVX2"
        elif "asimd" in self.flags:
            base = "NEON" + (" + SVE" if "sve" in self.flags else "")
        else:
            base = "no AVX2" if self.machine in ("x86_64", "AMD64") else self.machine
        notes = extras + ([f"capped at {self.isa_cap}"] if self.isa_cap else [])
        return f"{base} ({', '.join(notes)})" if notes else base

    def summary(self) -> str:
        """One line that names the machine, for benchmark tables and records."""
        memory = f", {self.memory_bytes / 2**30:.0f} GiB" if self.memory_bytes else ""
        gpus = f", GPU: {', '.join(self.gpus)}" if self.gpus else ", no GPU"
        return f"{self.cpu}, {self.isa}, {self.cores} cores{memory}{gpus}"

    def to_dict(self) -> dict[str, Any]:
        """What a record keeps: the facts and the judgements made of them."""
        return {
            "cpu": self.cpu,
            "machine": self.machine,
            "isa": self.isa,
            "avx2": self.avx2,
            "avx512": self.avx512,
            "vnni": self.vnni,
            "bf16": self.bf16,
            "amx": self.amx,
            "isa_cap": self.isa_cap,
            "cores": self.cores,
            "memory_bytes": self.memory_bytes,
            "gpus": list(self.gpus),
            "flags": sorted(self.flags),
        }


def read_cpu_flags(text: str) -> tuple[str, frozenset[str]]:
    """The model name and the reported flags (those in ``_FLAGS``) of ``/proc/cpuinfo``'s text."""
    model = re.search(r"^(?:model name|Model|Hardware|cpu model)\s*:\s*(.+)$", text, re.MULTILINE)
    flags: set[str] = set()
    for line in re.findall(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.MULTILINE):
        flags.update(line.split())
    return (model.group(1).strip() if model else ""), frozenset(flags & set(_FLAGS))


@functools.cache
def hardware() -> Hardware:
    """This machine's facts, read once per process."""
    cpu, flags = "", frozenset[str]()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu, flags = read_cpu_flags(cpuinfo.read_text(encoding="utf-8", errors="replace"))
    return Hardware(
        cpu=cpu or platform.processor() or platform.machine(),
        machine=platform.machine(),
        cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
        memory_bytes=_memory_bytes(),
        flags=flags,
        isa_cap=os.environ.get(ISA_CAP_VARIABLE) or os.environ.get("DNNL_MAX_CPU_ISA") or None,
        gpus=_gpus(),
    )


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def peak_rss_mb() -> float | None:
    """The most resident memory this process has held so far, in MB; None where the OS does not say
    (Windows has no ``resource`` module)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux, bytes on macOS
    return peak / (1 << 20) if platform.system() == "Darwin" else peak / 1024


def _gpus() -> tuple[str, ...]:
    """CUDA devices, asked of torch only where it is installed (the runtime install has none)."""
    if importlib.util.find_spec("torch") is None:
        return ()
    import torch

    if not torch.cuda.is_available():
        return ()
    return tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))


def dependency_versions() -> dict[str, str | None]:
    """Every package seekforge's extras name, with its installed version (None: not installed), plus
    Python and seekforge itself."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    try:
        requirements = importlib.metadata.requires("seekforge") or []
        versions["seekforge"] = importlib.metadata.version("seekforge")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        requirements = []
    names = sorted({re.split(r"[\s\[<>=!~;(]", r, maxsplit=1)[0].lower() for r in requirements} - {"seekforge"})
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def int8_portability(record: dict[str, Any]) -> str | None:
    """Why an export ``record`` may lose accuracy on this CPU, or None: an int8 model with 8-bit weights
    whose gate ran on a CPU with VNNI saturates on one without (exports made here choose for this CPU)."""
    made_on = record.get("hardware") or {}
    if record.get("precision") != "int8" or record.get("reduce_range") is not False:
        return None
    if not made_on.get("vnni") or hardware().vnni:
        return None
    return (
        f"{record.get('file', 'this int8 export')} has 8-bit weights and passed its parity gate on a CPU with VNNI "
        f"({made_on.get('isa')}); this one has none ({hardware().isa}), where its accuracy may drop: export it "
        "again here, or with --reduce-range on"
    )
