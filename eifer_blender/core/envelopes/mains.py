"""Power-line interference: which mains frequency a recording carries, and the notches that remove it.

Mains hum (50 Hz in Europe, Asia, Africa and Australia; 60 Hz in the Americas) comes with
harmonics and can be larger than the resting facial EMG. EIFER's chain notches the fundamental
with a wide notch (Q = 2); harmonics up to the band's upper edge get narrow ones (Q ≥ 30 · k at
the k-th harmonic, each 1.7 Hz wide at 50 Hz mains), so little EMG power is lost between them.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from scipy import signal

from ..recording import RecordingSource

MAINS_CANDIDATES_HZ = (50.0, 60.0)
DETECTION_SPAN_S = 60.0  # at most this much of the recording is looked at
PROMINENCE = 3.0  # a hum line stands this many times above its neighbourhood's spectrum
DEFAULT_MAINS_HZ = 50.0  # EIFER's notch, when no hum is found


def mains_notches(rate_hz: float, fundamentals_hz, *, harmonics: bool, q: float, harmonic_q: float,
                  upper_hz: float | None = None) -> tuple[tuple[float, float], ...]:
    """The notches to apply: ``(frequency_hz, Q)`` for each fundamental (Q = ``q``) and, with
    ``harmonics``, each harmonic k·f0 up to ``upper_hz`` (default Nyquist) whose notch band lies
    below Nyquist, with Q = k · ``harmonic_q``: every harmonic notch is f0 / harmonic_q wide
    (1.7 Hz at 50 Hz mains and ``harmonic_q`` 30), so nine of them in a 10–500 Hz band take ~3 %
    of it."""
    nyquist = rate_hz / 2
    top = nyquist if upper_hz is None else min(upper_hz, nyquist)
    out: list[tuple[float, float]] = []
    for f0 in fundamentals_hz:
        k = 1
        while True:
            f, quality = k * f0, (q if k == 1 else k * harmonic_q)
            if f * (1 + 1 / (2 * quality)) >= nyquist or (k > 1 and f > top):
                break
            if all(abs(f - g) > 1e-9 for g, _ in out):
                out.append((f, quality))
            if not harmonics:
                break
            k += 1
    return tuple(out)


def _line_prominence(freqs: np.ndarray, power: np.ndarray, f0: float) -> float:
    """How far the spectrum's peak near ``f0`` stands above the median of its 3–10 Hz neighbourhood."""
    near = np.abs(freqs - f0) <= 1.0
    around = (np.abs(freqs - f0) >= 3.0) & (np.abs(freqs - f0) <= 10.0)
    if not near.any() or not around.any():
        return 0.0
    floor = np.median(power[..., around], axis=-1)
    return float(np.median(power[..., near].max(axis=-1) / np.maximum(floor, 1e-30)))


def detect_mains_hz(data_uv: np.ndarray, rate_hz: float) -> tuple[float | None, str]:
    """The mains frequency (50 or 60 Hz) whose line and harmonics stand out in ``data_uv``.

    ``data_uv`` (channels, samples); returns ``(hz, note)``, ``hz`` None when no hum line stands
    out (a clean or already notched recording). Welch's averaged periodogram, 0.5 Hz resolution.
    """
    data = np.asarray(data_uv, dtype=np.float64)
    data = data - data.mean(axis=-1, keepdims=True)
    nperseg = int(min(data.shape[-1], 2 * rate_hz))
    if nperseg < rate_hz / 2:
        return None, "too short to look for mains hum"
    freqs, power = signal.welch(data, fs=rate_hz, nperseg=nperseg, axis=-1)
    scores = {}
    for f0 in MAINS_CANDIDATES_HZ:
        lines = [k * f0 for k in (1, 2, 3) if k * f0 + 10.0 < rate_hz / 2]
        scores[f0] = max((_line_prominence(freqs, power, f) for f in lines), default=0.0)
    best = max(scores, key=scores.get)
    if scores[best] < PROMINENCE:
        return None, "no mains hum found in the spectrum"
    return best, f"{best:g} Hz mains hum found in the spectrum (line {scores[best]:.0f}× its surroundings)"


def detect_in_source(source: RecordingSource, derive) -> tuple[float | None, str]:
    """:func:`detect_mains_hz` on the first ``DETECTION_SPAN_S`` of the channels the chain filters:
    ``derive(block)`` turns the file's rows into them (bipolar pairs cancel common-mode hum)."""
    stop = int(min(source.n_samples, DETECTION_SPAN_S * source.rate_hz))
    block = derive(source.read(0, stop))
    return detect_mains_hz(np.where(np.isfinite(block), block, 0.0), source.rate_hz)


def choose_fundamentals(source: RecordingSource, derive, notch_hz) -> tuple[tuple[float, ...], str]:
    """The mains fundamentals to notch (``notch_hz``, or found in the derived channels when "auto")
    and a note saying how they were chosen."""
    if not isinstance(notch_hz, str):
        notch_hz = tuple(float(f) for f in notch_hz)
        return notch_hz, (f"{', '.join(f'{f:g}' for f in notch_hz)} Hz notched as set" if notch_hz else "no notch")
    found, note = detect_in_source(source, derive)
    if found is None:
        return (DEFAULT_MAINS_HZ,), f"{note}: {DEFAULT_MAINS_HZ:g} Hz notched, as EIFER does"
    return (found,), note


def whole_periods_samples(rate_hz: float, fundamentals_hz) -> int | None:
    """The fewest samples that hold a whole number of periods of every fundamental (and so of all
    their harmonics): 1024 at 2048 Hz for 50 Hz mains (25 periods). None when no short one exists."""
    common = Fraction(0)  # the greatest common divisor of the fundamentals, as a fraction
    for f0 in fundamentals_hz:
        f = Fraction(f0).limit_denominator(1000)
        common = f if common == 0 else Fraction(math.gcd(common.numerator * f.denominator, f.numerator * common.denominator),
                                                common.denominator * f.denominator)
    if common <= 0:
        return None
    period = (Fraction(rate_hz).limit_denominator(1000) / common).limit_denominator(1000)
    samples = period.numerator  # period.denominator periods of the common frequency
    return samples if samples <= 10 * rate_hz else None


def notch_filtfilt(data: np.ndarray, sos: np.ndarray, rate_hz: float, fundamentals_hz, pad: int) -> np.ndarray:
    """Zero-phase notches with the recording extended by whole mains periods at both ends.

    A narrow notch rings for seconds; reflecting the signal at its ends (``sosfiltfilt``'s default)
    breaks the phase of a large hum and leaves that ringing in the first and last seconds. Here
    the padding is the signal itself, shifted by a whole number of mains periods, so the hum runs
    on unbroken into the padding and the notches start and end in their steady state.
    """
    n = data.shape[-1]
    period = whole_periods_samples(rate_hz, fundamentals_hz)
    if period is None or period >= n:
        return signal.sosfiltfilt(sos, data, axis=-1)
    shift = int(np.ceil(pad / period)) * period
    if shift >= n:
        shift = (n - 1) // period * period
        pad = min(pad, shift)
    left = data[..., shift - pad:shift]
    right = data[..., n - shift:n - shift + pad]
    padded = np.concatenate([left, data, right], axis=-1)
    return signal.sosfiltfilt(sos, padded, axis=-1, padtype=None)[..., pad:pad + n]
