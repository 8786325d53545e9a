"""Resident memory of a process (optionally with its children), now and at its peak over a
block of work, read with psutil. Used by the evals' resource report and the benchmarks."""

from __future__ import annotations

import threading

from rag.extras import require_extra

MIB = 1 << 20


def rss_bytes(pid: int | None = None, children: bool = False) -> int | None:
    """Resident set size of ``pid`` (default: this process), plus its children's when asked;
    None when the process is gone."""
    require_extra("evals", "psutil")
    import psutil

    try:
        proc = psutil.Process(pid)
        total = int(proc.memory_info().rss)
        for child in proc.children(recursive=True) if children else ():
            try:
                total += int(child.memory_info().rss)
            except psutil.Error:
                pass
    except psutil.Error:
        return None
    return total


class PeakRss:
    """The peak of :func:`rss_bytes`, sampled every ``every_s`` in a background thread while
    the ``with`` block runs (``peak``: bytes; ``peak_mb``: decimal MB)."""

    def __init__(self, every_s: float = 0.25, pid: int | None = None, children: bool = False):
        self._read = lambda: rss_bytes(pid, children) or 0
        self._every = every_s
        self._stop = threading.Event()
        self.peak = self._read()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, self._read())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._read())

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 1e6, 1)
