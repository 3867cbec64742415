"""Keep the memory a CPU training step frees for the next step, instead of handing it back to the system.

glibc's allocator serves blocks above a threshold (dynamic, from 128 KiB up to 32 MiB) with fresh ``mmap`` pages
and gives the free top of its heap back once it exceeds twice that; a training step frees megabytes of
temporaries that the next step allocates again, and every page handed back is a page fault when it returns. The
Winograd convolution (:mod:`models.networks.winograd_conv`) made that visible: 1,400-2,150 page faults a VAEVAE
step on the MNIST-Split networks (64-85 with this setting), and the layer saved 1.3 ms a step without the setting
(40 interleaved pairs of steps) against 9.5-11.3 ms with it (four runs of 30-40 pairs; one AMD EPYC Zen 4 core).
Fixing both thresholds keeps the heap at its peak between steps: the peak a step reaches anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap: glibc's largest mmap threshold on 64-bit systems.
MMAP_THRESHOLD = 32 << 20
#: Free memory kept at the top of the heap.
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds for training (module doc). Returns whether both took effect; False on
    a C library without ``mallopt`` (musl, macOS), where nothing changes."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
