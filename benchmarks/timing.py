"""Timing for the benchmarks: the candidates run in turn (A B A B …), each the median of its repeats,
so a machine that slows down mid-run slows both alike; min–max go in the note."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

REPEATS = 3


def interleaved(candidates: dict[str, Callable[[], object]], repeats: int = REPEATS,
                setup: Callable[[], object] | None = None) -> dict[str, list[float]]:
    """Seconds of each candidate, ``repeats`` times, in turn; ``setup`` (untimed) before every run."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            if setup is not None:
                setup()
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return times


def timed(run: Callable[[], object]) -> tuple[float, object]:
    """Seconds of one run of ``run``, and what it returned (for rows that run once)."""
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def median(times: list[float]) -> float:
    return float(np.median(times))


def spread(times: list[float], scale: float = 1.0, unit: str = "s") -> str:
    """``"0.52–0.66 s"``: the range behind a median, for the note."""
    return f"{min(times) * scale:.3g}–{max(times) * scale:.3g} {unit}"


def timing_note(times: dict[str, list[float]], scale: float = 1.0, unit: str = "s") -> str:
    """``"median of 3, interleaved (ours 0.52–0.66 s, scipy 1.3–4.1 s)"``."""
    n = len(next(iter(times.values())))
    ranges = ", ".join(f"{name} {spread(t, scale, unit)}" for name, t in times.items())
    return f"median of {n}, interleaved ({ranges})"
