"""Keep freed memory in the process on glibc, so that large per-step tensors do not page-fault each step.

A batched evaluation of many beads allocates tensors of tens to hundreds of MB on every call. glibc
serves such blocks with mmap and returns them to the kernel when freed, so every step pays for
zeroing fresh pages (measured: a 32-bead water batch spent more time in page faults than in
arithmetic). Raising the mmap and trim thresholds makes glibc reuse the freed heap instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_threshold: int = 1 << 30, top_pad: int = 256 << 20) -> bool:
    """Tune glibc's malloc for this process (no effect elsewhere); True when applied."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return all(
        mallopt(option, value) == 1
        for option, value in (
            (_M_MMAP_THRESHOLD, mmap_threshold),
            (_M_TRIM_THRESHOLD, 2**31 - 1),
            (_M_TOP_PAD, top_pad),
        )
    )
