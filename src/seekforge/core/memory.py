"""Memory settings for a process that holds one large table (``seekforge data`` commands)."""

from __future__ import annotations

import contextlib
import ctypes
import sys

#: glibc's mallopt parameter for the size above which blocks are mapped (and unmapped) on their own
_M_MMAP_THRESHOLD = -3


def lean_memory(threshold: int = 256 * 1024) -> None:
    """Give freed memory back to the operating system as soon as it is freed.

    By default glibc raises its mmap threshold each time a large block is freed, so later columns are
    carved from the heap and stay there after use; a fixed threshold maps every column on its own and
    unmaps it when freed. pyarrow (which holds text columns) then allocates through the same allocator
    rather than keeping its own pool. Nothing happens off Linux or where glibc is absent.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, threshold)
    with contextlib.suppress(ImportError):
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())


def release_free_memory() -> None:
    """Hand freed heap memory back to the operating system (glibc keeps it otherwise)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc
            ctypes.CDLL("libc.so.6").malloc_trim(0)
