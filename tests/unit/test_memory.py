"""Resident memory as the evals' resource report and the benchmarks read it (evals.memory)."""

from __future__ import annotations

import subprocess
import sys
import time

from evals.memory import PeakRss, rss_bytes


def test_rss_of_this_process_and_of_a_child() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        own = rss_bytes()
        with_children = rss_bytes(children=True)
        assert own is not None and own > 1 << 20
        assert with_children is not None and with_children > own  # the child's memory counts
    finally:
        child.kill()
        child.wait()
    assert rss_bytes(child.pid) is None  # a process that is gone has no memory


def test_peak_sees_memory_that_was_freed_before_the_block_ended() -> None:
    before = rss_bytes() or 0
    with PeakRss(every_s=0.01) as peak:
        block = bytearray(64 << 20)  # 64 MiB, touched
        block[:: 1 << 12] = b"x" * len(block[:: 1 << 12])
        time.sleep(0.1)
        del block
    assert peak.peak >= before + (48 << 20)
    assert peak.peak_mb == round(peak.peak / 1e6, 1)
