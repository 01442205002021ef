"""Speed and memory of the sEMG processing chain on an hour of 44-channel, 4096 Hz input.

Row 1: EIFER's chain (mean removal, 44 monopolar -> 22 bipolar Fridlund channels, 50 Hz notch,
10-500 Hz FIR, 0.5 s RMS, 30 fps) on 1 h of synthetic input, chunked (``process_source``), with
the input generated piece by piece (never materialised: 1 h x 44 ch float64 would be 5.2 GB).
The time excludes generating the input (measured inside the source and subtracted).
Baseline, same run: the naive path a user writes with MNE on the whole array -- bipolar and mean
in numpy, ``RawArray``, ``raw.notch_filter(50, picks="emg")`` and ``raw.filter(10, 500,
picks="emg")`` (MNE's default FIR designs), RMS by numpy cumulative sums, frames picked at 30 fps.
The naive path cannot hold an hour in memory here, so it runs on 5 minutes and its time is
scaled x12 (MNE's FIR filtering is linear in length). Goal: >= 5x faster.
Row 2: peak resident memory of each path, each in its own fresh process (so imports count).
Goal <= 1.5 GB for the hour. The naive peak is measured at 5 minutes.
Row 3: chunked vs whole-array processing on the 5-minute slice: largest relative difference.
Rows 4-7: the product's default chain (mains found in the spectrum, its harmonics notched) beside
EIFER's own chain (one 50 Hz notch: today's figures), time and peak memory, on the same hour of
44 monopolar channels and on an hour of a lab's 2 channels (zygomaticus, corrugator) at 2000 Hz.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RATE_HZ = 4096.0
LAB_RATE_HZ = 2000.0
FPS = 30.0
HOUR_S = 3600.0
SLICE_S = 300.0
BANK_S = 10.0  # the synthetic input repeats every 10 s (bursts, hum and offsets included)
ROOT = Path(__file__).resolve().parents[1]


def _bank(seed: int = 0, rate_hz: float = RATE_HZ) -> tuple[np.ndarray, list[str]]:
    """44 monopolar channels (22 sites x 2 electrodes) of 10 s, periodic: Shwedyk carriers with
    bursts (µV), common 50 Hz hum and electrode offsets."""
    from eifer_blender.core.recording.montage import FRIDLUND22

    rng = np.random.default_rng(seed)
    n = int(BANK_S * rate_hz)
    f = np.fft.rfftfreq(n, 1 / rate_hz)
    psd = 120.0 ** 4 * f ** 2 / ((f ** 2 + 60.0 ** 2) * (f ** 2 + 120.0 ** 2) ** 2)
    carrier = np.fft.irfft(np.fft.rfft(rng.standard_normal((44, n)), axis=-1) * np.sqrt(psd), n, axis=-1)
    carrier /= carrier.std(axis=-1, keepdims=True)
    t = np.arange(n) / rate_hz
    level = np.full((44, n), 3.0)
    for ch in range(0, 44, 2):  # a burst per site, seen by both of its electrodes
        start = rng.uniform(0, BANK_S - 2)
        level[ch:ch + 2, (t >= start) & (t < start + 1.5)] = rng.uniform(20, 200)
    hum = 30.0 * np.sin(2 * np.pi * 50.0 * t)  # 500 whole cycles: periodic with the bank
    bank = carrier * level + hum + rng.uniform(-200, 200, size=(44, 1))
    names = [f"{site}_{e}" for site in FRIDLUND22 for e in (1, 2)]
    return bank, names


class _TimedSource:
    """Reads of a periodic bank, with the time spent producing samples accumulated."""

    def __init__(self, bank: np.ndarray, seconds: float, rate_hz: float = RATE_HZ):
        self.bank = bank
        self.n_samples = int(seconds * rate_hz)
        self.generate_s = 0.0

    def __call__(self, a: int, b: int) -> np.ndarray:
        started = time.perf_counter()
        idx = np.arange(a, b) % self.bank.shape[1]
        out = np.take(self.bank, idx, axis=1)
        self.generate_s += time.perf_counter() - started
        return out


def _peak_rss_mb() -> float:
    """Peak resident memory of this process since it started.

    Linux keeps ``ru_maxrss`` across fork and exec, so a child started by a parent that had
    grown (the other benchmarks run first in ``python -m benchmarks``) would report the parent's
    peak; ``VmHWM`` belongs to the process's own address space and starts afresh at exec.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _child_ours(chain: str = "eifer", channels: int = 44) -> dict:
    from eifer_blender.core.envelopes import ProcessingSettings, process_source
    from eifer_blender.core.recording import RecordingSource

    rate = RATE_HZ if channels == 44 else LAB_RATE_HZ
    bank, names = _bank(rate_hz=rate)
    if channels == 2:  # a lab's zygomaticus and corrugator, already bipolar, at 2000 Hz
        bank, names = np.stack([bank[38] - bank[39] + bank[0], bank[4] - bank[5] + bank[0]]), ["EMG_zyg", "EMG_cor"]
    reader = _TimedSource(bank, HOUR_S, rate)
    source = RecordingSource(rate, names, ["emg"] * len(names), reader.n_samples, reader,
                             source="synthetic 1 h")
    settings = (ProcessingSettings.eifer(chunk_s=60.0, side="left") if chain == "eifer"
                else ProcessingSettings(chunk_s=60.0, side="left"))
    started = time.perf_counter()
    track = process_source(source, FPS, settings)
    total = time.perf_counter() - started
    return {"total_s": total, "generate_s": reader.generate_s, "process_s": total - reader.generate_s,
            "peak_rss_mb": _peak_rss_mb(), "frames": track.n_frames, "channels": len(track.names)}


def scipy_chain(data_uv: np.ndarray, rate_hz: float, fps: float) -> np.ndarray:
    """EIFER's chain as a competent user writes it with scipy on the whole array, to the same
    specification as ``ProcessingSettings.eifer()``: electrode pairs subtracted, means removed,
    ``iirnotch(50, Q=2)`` + ``sosfiltfilt``, a 129-tap Hamming ``firwin`` 10-500 Hz applied once
    (``oaconvolve``, "same"), and the RMS over 0.5 s at the frame times from a cumulative sum
    (sample j spans [j - 1/2, j + 1/2), so a window edge between samples is interpolated).
    Returns (frames, channels)."""
    from scipy import signal

    bipolar = data_uv[0::2] - data_uv[1::2]
    bipolar -= bipolar.mean(axis=1, keepdims=True)
    b, a = signal.iirnotch(50.0, 2.0, fs=rate_hz)
    y = signal.sosfiltfilt(signal.tf2sos(b, a), bipolar, axis=-1)
    taps = signal.firwin(129, [10.0, 500.0], pass_zero="bandpass", window="hamming", fs=rate_hz)
    y = signal.oaconvolve(y, taps[None, :], mode="same", axes=-1)
    n = y.shape[1]
    edges = np.arange(n + 1) - 0.5
    cumulative = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(y * y, axis=1)], axis=1)
    centres = np.arange(int(np.floor((n - 1) / rate_hz * fps + 1e-9)) + 1) / fps * rate_hz
    half = 0.25 * rate_hz
    lo, hi = np.clip(centres - half, -0.5, n - 0.5), np.clip(centres + half, -0.5, n - 0.5)
    sums = np.stack([np.interp(hi, edges, c) - np.interp(lo, edges, c) for c in cumulative])
    return np.sqrt(np.maximum(sums, 0.0) / (hi - lo)).T


def _ours_on(bank: np.ndarray, names: list[str], seconds: float) -> tuple[float, np.ndarray]:
    """Seconds of ``process_source`` (EIFER's chain, 60 s pieces), input generation left out."""
    from eifer_blender.core.envelopes import ProcessingSettings, process_source
    from eifer_blender.core.recording import RecordingSource

    reader = _TimedSource(bank, seconds)
    source = RecordingSource(RATE_HZ, names, ["emg"] * len(names), reader.n_samples, reader)
    started = time.perf_counter()
    values = process_source(source, FPS, ProcessingSettings.eifer(chunk_s=60.0)).values
    return time.perf_counter() - started - reader.generate_s, values


def _beside_scipy() -> dict:
    """Ours and the scipy chain on the same 5 minutes, in this process, interleaved, REPEATS each;
    their outputs compared away from the ends (where the two pad differently)."""
    from benchmarks.timing import (
        REPEATS,  # here: the children run this file as a script
    )
    bank, names = _bank()
    data = _TimedSource(bank, SLICE_S)(0, int(SLICE_S * RATE_HZ))  # in memory for scipy (not timed)
    times = {"ours": [], "scipy": []}
    for _ in range(REPEATS):
        seconds, ours = _ours_on(bank, names, SLICE_S)
        times["ours"].append(seconds)
        started = time.perf_counter()
        theirs = scipy_chain(data, RATE_HZ, FPS)
        times["scipy"].append(time.perf_counter() - started)
    inner = slice(int(FPS), -int(FPS))  # frames more than 1 s from either end
    worst = float(np.max(np.abs(ours[inner] - theirs[inner]) / np.abs(theirs[inner])))
    return {**times, "max_rel": worst, "frames": ours.shape[0]}


def _child_scipy() -> dict:
    bank, _ = _bank()
    data = _TimedSource(bank, SLICE_S)(0, int(SLICE_S * RATE_HZ))
    frames = scipy_chain(data, RATE_HZ, FPS).shape[0]
    return {"peak_rss_mb": _peak_rss_mb(), "frames": frames}


def _child_seams() -> dict:
    from eifer_blender.core.envelopes import ProcessingSettings, process_source
    from eifer_blender.core.recording import RecordingSource

    bank, names = _bank()
    reader = _TimedSource(bank, SLICE_S)
    source = RecordingSource(RATE_HZ, names, ["emg"] * 44, reader.n_samples, reader)
    chunked = process_source(source, FPS, ProcessingSettings.eifer(chunk_s=60.0)).values
    whole = process_source(source, FPS, ProcessingSettings.eifer(chunk_s=None)).values
    return {"max_rel": float(np.max(np.abs(chunked - whole) / np.abs(whole)))}


def _run_child(which: str) -> dict:
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), which], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _default_rows() -> list[dict]:
    out = []
    for channels, shape in ((44, "1 h x 44 mono ch x 4096 Hz"), (2, "1 h x 2 ch x 2000 Hz (zyg, corr)")):
        default, eifer = _run_child(f"default-{channels}"), _run_child(f"eifer-{channels}")
        out += [
            {"measure": f"process {shape}, default chain, time", "value": default["process_s"], "unit": "s",
             "baseline": eifer["process_s"], "ratio": default["process_s"] / eifer["process_s"],
             "note": "ratio = cost of finding the mains and notching its harmonics; baseline = EIFER's "
                     "chain (one 50 Hz notch), same input, same run"},
            {"measure": f"process {shape}, default chain, peak memory", "value": default["peak_rss_mb"],
             "unit": "MB", "baseline": eifer["peak_rss_mb"], "ratio": default["peak_rss_mb"] / eifer["peak_rss_mb"],
             "note": "peak RSS of a fresh process each; baseline = EIFER's chain"},
        ]
    return out


def rows() -> list[dict]:
    from benchmarks.timing import timing_note

    beside = _beside_scipy()
    ours = _run_child("eifer-44")
    scipy_peak = _run_child("scipy")
    seams = _run_child("seams")
    ours_s, scipy_s = float(np.median(beside["ours"])), float(np.median(beside["scipy"]))
    shape = "1 h x 44 mono ch x 4096 Hz -> 22 bipolar @30 fps"
    return [
        {"measure": f"process {SLICE_S / 60:g} min x 44 mono ch x 4096 Hz: ours vs equal-spec scipy",
         "value": ours_s, "unit": "s", "baseline": scipy_s, "ratio": scipy_s / ours_s,
         "note": f"ratio = speed-up; same process, {timing_note({'ours': beside['ours'], 'scipy': beside['scipy']})}; "
                 f"same filters, whole "
                 f"array in memory for scipy; outputs: largest relative difference "
                 f"{beside['max_rel']:.1e} away from the ends "
                 f"({'within' if beside['max_rel'] <= 1e-6 else 'OUTSIDE'} the tolerance 1e-6)"},
        {"measure": f"process {shape}, time", "value": ours["process_s"], "unit": "s",
         "baseline": HOUR_S, "ratio": HOUR_S / ours["process_s"],
         "note": f"ratio = times faster than real time; 60 s pieces; input generation "
                 f"({ours['generate_s']:.1f} s, two passes) excluded"},
        {"measure": f"process {shape}, peak memory", "value": ours["peak_rss_mb"], "unit": "MB",
         "baseline": scipy_peak["peak_rss_mb"], "ratio": ours["peak_rss_mb"] / scipy_peak["peak_rss_mb"],
         "note": f"peak RSS of a fresh process each (imports included); goal <= 1536 MB; baseline = the "
                 f"scipy chain at {SLICE_S / 60:g} min only (the hour's input alone would be "
                 f"{44 * HOUR_S * RATE_HZ * 8 / 2 ** 30:.1f} GB)"},
        {"measure": "chunked vs whole-array, 5 min x 22 ch", "value": seams["max_rel"], "unit": "rel",
         "baseline": 1e-6, "ratio": seams["max_rel"] / 1e-6,
         "note": "largest relative difference of the envelopes; acceptance <= 1e-6"},
    ] + _default_rows()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    which = sys.argv[1]
    if which.startswith(("default-", "eifer-")):
        chain, channels = which.split("-")
        print(json.dumps(_child_ours(chain, int(channels))))
    else:
        print(json.dumps({"scipy": _child_scipy, "seams": _child_seams}[which]()))
