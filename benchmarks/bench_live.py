"""Live latency: sample in → weights out, per step of the live driver, and the LSL transport beside it.

Input: 20 s of a simulated 22-channel Fridlund recording at 2048 Hz, fed to ``core.live.LiveDriver``
with the shipped live model (``core.live.LIVE_MODEL``, causal) in the steps a 120 Hz poll gives (17 samples each), after a 2 s
calibration period. Rows 1–2: median and p95 processing time of the steps that made weights
(filters, causal RMS, normalisation, one model call). Baseline, same run, at the same steps: what a
live loop without a stateful chain does, recomputing the offline causal path over the whole buffer
so far (``core.live.causal_drive``) and keeping the newest weights; it grows with the buffer, so it
is timed at every 60th step. Goal: ≤ 50 ms of processing on top of the causal window.
Rows 3–4: the age of the newest sample when pulled (LSL timestamps), median and p95, over a real
outlet/inlet pair on this machine at a 120 Hz poll (10 s replay). Row 5: the structural latency,
the window's own lag (trailing RMS group delay + filters) plus the model's wait for the future half
of a centred window, of the live model against the offline model (``emg2arkit``) run live.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np

RATE_HZ = 2048.0
SECONDS = 20.0
POLL_HZ = 120.0
BASELINE_EVERY = 60
LSL_SECONDS = 10.0
def _machine_only() -> None:
    """Discovery stays on this machine (unless the caller set its own LSL configuration)."""
    if "LSLAPICFG" not in os.environ:
        from tests.lsl_config import write_machine_only_config

        os.environ["LSLAPICFG"] = write_machine_only_config("eifer-bench-lsl-")


def _inputs():
    from eifer_blender.core.live import LIVE_MODEL, site_recording
    from eifer_blender.core.network import load_model, shipped_model_path
    from eifer_blender.core.simulator.session import simulate_session

    session = simulate_session("mixed", subject=2, duration_s=SECONDS, rate_hz=RATE_HZ, fps=30.0, seed=1)
    return site_recording(session.recording), load_model(shipped_model_path(LIVE_MODEL), providers="cpu")


def _steps(sites, model, settings):
    from eifer_blender.core.live import LiveDriver, Recording, causal_drive

    driver = LiveDriver(model, sites.channel_names, RATE_HZ, settings)
    step = int(round(RATE_HZ / POLL_HZ))
    ours, baseline, same = [], [], []
    for k, a in enumerate(range(0, sites.n_samples, step)):
        block = sites.data_uv[:, a:a + step]
        started = time.perf_counter()
        driver.step(block.T)
        elapsed = time.perf_counter() - started
        if driver.last_frames.size:
            ours.append(elapsed)
            if k % BASELINE_EVERY == 0:
                buffer = Recording(sites.data_uv[:, :a + block.shape[1]], RATE_HZ, sites.channel_names)
                started = time.perf_counter()
                offline = causal_drive(buffer, model, settings)
                baseline.append(time.perf_counter() - started)
                same.append(float(np.abs(offline.expression.values[-1] - driver.weights_now).max()))
    return np.array(ours) * 1e3, np.array(baseline) * 1e3, max(same), driver


def _transport(sites, model, settings):
    from eifer_blender.core.live import LiveDriver, make_outlet, replay

    name = f"eifer-bench-{os.getpid()}"
    n = int(LSL_SECONDS * RATE_HZ)
    outlet = make_outlet(name, sites.channel_names, RATE_HZ)
    driver = LiveDriver.connect(model, name=name, settings=settings, timeout_s=5.0)
    thread = threading.Thread(target=replay, args=(outlet, sites.data_uv[:, :n], RATE_HZ), daemon=True)
    end = time.monotonic() + 5.0
    while not outlet.have_consumers() and time.monotonic() < end:
        time.sleep(0.005)
    thread.start()
    ages, stop = [], time.monotonic() + LSL_SECONDS + 5.0
    while driver.status.samples < n and time.monotonic() < stop:
        before = driver.status.samples
        driver.pull_and_step()
        if driver.status.samples > before:
            ages.append(driver.status.transport_ms)
        time.sleep(1.0 / POLL_HZ)
    driver.close()
    thread.join(timeout=5.0)
    return np.array(ages), driver.status.samples, n


def rows():
    _machine_only()
    from eifer_blender.core.live import LiveDriver, LiveSettings
    from eifer_blender.core.network import load_model, shipped_model_path

    sites, model = _inputs()
    settings = LiveSettings(calibration_s=2.0)
    ours, baseline, same, driver = _steps(sites, model, settings)
    ages, received, sent = _transport(sites, model, settings)
    med, p95 = float(np.median(ours)), float(np.percentile(ours, 95))
    base_med, base_p95 = float(np.median(baseline)), float(np.percentile(baseline, 95))
    structural = 1000.0 * (driver.window_lag_s + driver.model_wait_s)
    offline_model = load_model(shipped_model_path("emg2arkit"), providers="cpu")
    offline = LiveDriver(offline_model, sites.channel_names, RATE_HZ, settings)
    offline_structural = 1000.0 * (offline.window_lag_s + offline.model_wait_s)
    return [
        {"measure": "live step, sample in -> weights out: median processing per step", "value": med, "unit": "ms",
         "baseline": base_med, "ratio": base_med / med,
         "note": f"{len(ours)} steps of {int(round(RATE_HZ / POLL_HZ))} samples (22 ch, 2048 Hz, {POLL_HZ:g} Hz poll), "
                 f"{model.path.name} on {model.provider}; baseline: the offline causal path recomputed over the "
                 f"buffer so far ({len(baseline)} steps, 2-{SECONDS:g} s of buffer), newest weights equal to "
                 f"{same:.1g}; goal <= 50 ms"},
        {"measure": "live step: p95 processing per step", "value": p95, "unit": "ms", "baseline": base_p95,
         "ratio": base_p95 / p95, "note": f"max {ours.max():.3g} ms; goal <= 50 ms on top of the causal window"},
        {"measure": "LSL loopback: age of the newest sample when pulled, median", "value": float(np.median(ages)),
         "unit": "ms", "baseline": None, "ratio": None,
         "note": f"real outlet/inlet on this machine, {LSL_SECONDS:g} s replay, {POLL_HZ:g} Hz poll; "
                 f"{received} of {sent} samples arrived"},
        {"measure": "LSL loopback: age of the newest sample, p95", "value": float(np.percentile(ages, 95)),
         "unit": "ms", "baseline": None, "ratio": None, "note": "includes up to one poll period of waiting"},
        {"measure": "window lag + model wait (structural, not processing)", "value": structural,
         "unit": "ms", "baseline": offline_structural, "ratio": offline_structural / structural,
         "note": f"{model.path.name}: trailing {driver.processing.rms_window_s:g} s RMS + filters "
                 f"{1000 * driver.window_lag_s:.0f} ms, {model.alignment} window waits "
                 f"{1000 * driver.model_wait_s:.0f} ms; baseline: {offline_model.path.name} live, trailing "
                 f"{offline.processing.rms_window_s:g} s RMS {1000 * offline.window_lag_s:.0f} ms + its "
                 f"{offline_model.alignment} window's wait {1000 * offline.model_wait_s:.0f} ms"},
    ]
