from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and its allocator settings are Linux only")
def test_lean_memory_switches_pyarrow_to_the_system_allocator() -> None:
    code = (
        "import pyarrow as pa; from seekforge.core.memory import lean_memory, release_free_memory;"
        "lean_memory(); release_free_memory(); print(pa.default_memory_pool().backend_name)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "system"
