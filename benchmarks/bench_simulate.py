"""Speed of the physiological simulator.

Row 1: a whole 10-minute session (protocol, ground-truth face, 22-channel sEMG at 4096 Hz) on one
thread of work; goal ≤ 10 s. Baseline, same run: drawing just the Gaussian white noise such a
session needs (one stream per muscle unit plus one per channel, float64 numpy), the floor any
noise-based generator pays before shaping anything.
Row 2: the sEMG synthesis alone for the same activations (baseline: the same white-noise floor).
"""
from __future__ import annotations

import time

import numpy as np

DURATION_S = 600.0
RATE_HZ = 4096.0


def _timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def rows() -> list[dict]:
    from eifer_blender.core.simulator.physiology import UNIT_NAMES
    from eifer_blender.core.simulator.session import simulate_session
    from eifer_blender.core.simulator.synthesis import synthesize_emg

    simulate_session("mixed", 1, 2.0, rate_hz=RATE_HZ)  # warm-up: imports, FFT plans
    session_s, session = _timed(lambda: simulate_session("mixed", 1, DURATION_S, rate_hz=RATE_HZ, seed=0))
    synth_s, _ = _timed(lambda: synthesize_emg(session.activations, session.subject, RATE_HZ, seed=0))
    n_samples = int(DURATION_S * RATE_HZ)
    rng = np.random.default_rng(0)
    streams = len(UNIT_NAMES) + session.recording.n_channels

    def draw_noise():
        for _ in range(streams):  # one stream at a time: keeps memory at one stream
            rng.standard_normal(n_samples)

    noise_s, _ = _timed(draw_noise)
    shape = f"{DURATION_S / 60:g} min x {session.recording.n_channels} ch x {RATE_HZ:g} Hz"
    return [
        {"measure": f"simulate_session('mixed') {shape}", "value": session_s, "unit": "s",
         "baseline": noise_s, "ratio": session_s / noise_s,
         "note": f"goal <= 10 s; {DURATION_S / session_s:.0f}x real time; baseline = "
                 f"drawing {streams} white-noise streams only"},
        {"measure": f"synthesize_emg {shape}", "value": synth_s, "unit": "s",
         "baseline": noise_s, "ratio": synth_s / noise_s,
         "note": "sEMG only (carriers, crosstalk, noise, hum, wander, artefacts)"},
    ]
