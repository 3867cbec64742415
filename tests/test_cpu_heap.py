"""The trainer's allocator setting takes effect where the C library is glibc."""

from __future__ import annotations

import platform

import pytest

from training.cpu_heap import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's thresholds are glibc's")
def test_keep_freed_memory_sets_both_thresholds_on_glibc() -> None:
    assert keep_freed_memory() is True
