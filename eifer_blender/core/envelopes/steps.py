"""The steps of EIFER's chain, one public function each, on ``(channels, samples)`` arrays.

Definitions that make the result exact and chunkable
    * FIR zero phase: centred convolution after odd reflection of ``(taps - 1) / 2`` samples at
      each end of the recording.
    * Notch: ``scipy.signal.sosfiltfilt`` with its default odd padding.
    * RMS at time t: square root of the mean of x^2 over ``[t - w/2, t + w/2]``, each sample
      holding its value for one sample period (so fractional window edges and frame times are
      exact); the window is clipped at the ends of the recording.
    * Rectify: ``sosfiltfilt`` of ``|x|``, linearly interpolated at the frame times, scaled by
      sqrt(pi/2) so that a Gaussian signal gets the same level as with RMS.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import fft as sfft
from scipy import signal

from ..errors import InputError
from .settings import EIFER_TAPS_AT_4096

RECTIFY_TO_RMS = math.sqrt(math.pi / 2)  # E|x| = sigma * sqrt(2/pi) for Gaussian x
FFT_WORKERS = -1  # scipy.fft threads over channels (-1: all cores)


def remove_mean(data: np.ndarray) -> np.ndarray:
    """Subtract each channel's mean: ``data - data.mean(axis=-1)``."""
    data = np.asarray(data, dtype=np.float64)
    return data - data.mean(axis=-1, keepdims=True)


def notch_frequencies(rate_hz: float, freqs_hz: Sequence[float], harmonics: bool = False,
                      q: float = 2.0) -> tuple[float, ...]:
    """The notch frequencies that apply at ``rate_hz``: given ones (and harmonics) whose whole
    notch band (``f * (1 + 1 / (2 q))``) lies below Nyquist; a wider notch would not be a notch."""
    nyq = rate_hz / 2
    out: list[float] = []
    for f0 in freqs_hz:
        k = 1
        while k * f0 * (1 + 1 / (2 * q)) < nyq:
            if k * f0 not in out:
                out.append(k * f0)
            if not harmonics:
                break
            k += 1
    return tuple(out)


def design_notch(rate_hz: float, freq_hz: float, q: float = 2.0) -> np.ndarray:
    """Second-order IIR notch as SOS (``scipy.signal.iirnotch``)."""
    b, a = signal.iirnotch(freq_hz, q, fs=rate_hz)
    return signal.tf2sos(b, a)


def notch_filter(data: np.ndarray, rate_hz: float, freqs_hz: Sequence[float] = (50.0,),
                 q: float = 2.0, harmonics: bool = False) -> np.ndarray:
    """Zero-phase IIR notch(es): ``sosfiltfilt`` per frequency, frequencies >= Nyquist skipped."""
    out = np.asarray(data, dtype=np.float64)
    for f in notch_frequencies(rate_hz, freqs_hz, harmonics, q):
        out = signal.sosfiltfilt(design_notch(rate_hz, f, q), out, axis=-1)
    return out


def effective_band(rate_hz: float, band_hz: tuple[float, float], nyquist_fraction: float = 0.9,
                   source: str = "") -> tuple[float, float]:
    """The band actually applied: upper edge capped at ``nyquist_fraction`` of Nyquist.

    Raises
    ------
    InputError
        If the rate is too low for the band (the capped upper edge is not above the lower one).
    """
    low, high = band_hz
    cap = nyquist_fraction * rate_hz / 2
    if cap <= low:
        where = f"{source}: " if source else ""
        raise InputError(
            f"{where}sampling rate {rate_hz:g} Hz is too low for the {low:g}-{high:g} Hz band "
            f"(Nyquist is {rate_hz / 2:g} Hz); facial sEMG needs >= 1000 Hz, or lower the band")
    return low, min(high, cap)


def design_bandpass(rate_hz: float, band_hz: tuple[float, float] = (10.0, 500.0),
                    taps: int | str = "eifer", nyquist_fraction: float = 0.9,
                    source: str = "") -> np.ndarray:
    """Linear-phase FIR band-pass taps (odd length).

    ``taps="eifer"``: ``scipy.signal.firwin`` with a Hamming window and 129 taps at 4096 Hz,
    scaled to the rate; ``"mne"``: ``mne.filter.create_filter`` (Hamming, firwin, zero phase)
    with MNE's automatic length; an int: that many taps with firwin.
    """
    low, high = effective_band(rate_hz, band_hz, nyquist_fraction, source)
    if taps == "mne":
        import mne

        return np.asarray(mne.filter.create_filter(
            None, rate_hz, low, high, method="fir", phase="zero", fir_window="hamming",
            fir_design="firwin", verbose="error"), dtype=np.float64)
    if taps == "eifer":
        half = max(1, int(round((EIFER_TAPS_AT_4096 - 1) / 2 * rate_hz / 4096.0)))
        n_taps = 2 * half + 1
    else:
        n_taps = int(taps)
    return signal.firwin(n_taps, [low, high], pass_zero="bandpass", window="hamming", fs=rate_hz)


def fir_zero_phase(data: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Centred convolution with odd-length ``taps`` after odd reflection at both ends."""
    data = np.asarray(data, dtype=np.float64)
    half = (len(taps) - 1) // 2
    if half == 0:
        return data * taps[0]
    if data.shape[-1] <= half:
        raise InputError(f"signal of {data.shape[-1]} samples is shorter than the band-pass "
                         f"filter's half length ({half} samples)")
    padded = np.pad(data, [(0, 0)] * (data.ndim - 1) + [(half, half)], mode="reflect",
                    reflect_type="odd")
    return fft_convolve_valid(padded, taps)


def bandpass_filter(data: np.ndarray, rate_hz: float, band_hz: tuple[float, float] = (10.0, 500.0),
                    taps: int | str = "eifer", nyquist_fraction: float = 0.9) -> np.ndarray:
    """Zero-phase FIR band-pass (:func:`design_bandpass` + :func:`fir_zero_phase`)."""
    return fir_zero_phase(data, design_bandpass(rate_hz, band_hz, taps, nyquist_fraction))



def rms_at(data: np.ndarray, rate_hz: float, times_s: np.ndarray, window_s: float = 0.5) -> np.ndarray:
    """RMS of ``data`` (channels, samples) over ``window_s`` centred at ``times_s``; (frames, channels).

    Each sample holds its value for one sample period, so fractional window edges are exact;
    windows are clipped at the ends of the data.
    """
    data = np.asarray(data, dtype=np.float64)
    centres = np.asarray(times_s, dtype=np.float64) * rate_hz
    return rms_at_positions(data * data, centres, window_s * rate_hz).T


def rectified_envelope_at(data: np.ndarray, rate_hz: float, times_s: np.ndarray,
                          lowpass_hz: float = 6.0, order: int = 4) -> np.ndarray:
    """Rectify + zero-phase Butterworth low-pass, times sqrt(pi/2), at ``times_s``; (frames, channels)."""
    sos = signal.butter(order, lowpass_hz, btype="lowpass", fs=rate_hz, output="sos")
    smooth = signal.sosfiltfilt(sos, np.abs(np.asarray(data, dtype=np.float64)), axis=-1)
    return interp_at(smooth, np.asarray(times_s) * rate_hz).T * RECTIFY_TO_RMS


# ----------------------------------------------------------------------------------------------
# Normalisation


def rms_at_positions(power: np.ndarray, centres: np.ndarray, window: float) -> np.ndarray:
    """sqrt(mean power) over [c - window/2, c + window/2] (sample j spans [j-.5, j+.5)); (ch, frames)."""
    n = power.shape[-1]
    lo = np.clip(centres - window / 2, -0.5, n - 0.5)
    hi = np.clip(centres + window / 2, -0.5, n - 0.5)
    m_lo = np.floor(lo + 0.5).astype(np.int64)
    m_hi = np.floor(hi + 0.5).astype(np.int64)
    f_lo = lo + 0.5 - m_lo
    f_hi = hi + 0.5 - m_hi
    # sums over whole samples [m_lo, m_hi): cut the signal at every window edge and add up the
    # pieces, so each sum is formed from pieces no longer than the hop (no long running sums)
    edges = np.unique(np.concatenate([m_lo, m_hi, [n]]))
    edges = edges[edges < n]
    pieces = np.add.reduceat(power, edges, axis=-1) if edges.size else np.zeros(power.shape[:-1] + (0,))
    prefix = np.concatenate([np.zeros(power.shape[:-1] + (1,)), np.cumsum(pieces, axis=-1)], axis=-1)
    where = np.concatenate([edges, [n]])
    i_lo = np.searchsorted(where, m_lo)
    i_hi = np.searchsorted(where, m_hi)
    total = prefix[..., i_hi] - prefix[..., i_lo]
    # fractional edge samples; an index of n only occurs with a zero fraction
    total += f_hi * power[..., np.minimum(m_hi, n - 1)] - f_lo * power[..., np.minimum(m_lo, n - 1)]
    width = hi - lo
    return np.sqrt(np.maximum(total, 0.0) / width)


def interp_at(smooth: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``smooth[ch, samples]`` at fractional sample positions; (ch, frames)."""
    n = smooth.shape[-1]
    positions = np.clip(positions, 0, n - 1)
    i0 = np.minimum(np.floor(positions).astype(np.int64), n - 2) if n > 1 else np.zeros(len(positions), int)
    frac = positions - i0
    if n == 1:
        return np.repeat(smooth, len(positions), axis=-1)
    return smooth[..., i0] * (1 - frac) + smooth[..., i0 + 1] * frac


def fft_convolve_valid(x: np.ndarray, kernel: np.ndarray, cache: dict | None = None) -> np.ndarray:
    """``np.convolve(row, kernel, "valid")`` for every row, by overlap-save FFT."""
    n, k = x.shape[-1], len(kernel)
    out_len = n - k + 1
    if out_len <= 0:
        return np.zeros(x.shape[:-1] + (0,))
    nfft = sfft.next_fast_len(max(8 * k, 32768), real=True)
    nfft = min(nfft, sfft.next_fast_len(n, real=True))
    nfft = max(nfft, sfft.next_fast_len(k, real=True))
    step = nfft - k + 1
    key = (id(kernel), nfft)
    spectrum = cache.get(key) if cache is not None else None
    if spectrum is None:
        spectrum = sfft.rfft(kernel, nfft)
        if cache is not None:
            cache[key] = spectrum
    out = np.empty(x.shape[:-1] + (out_len,))
    for a in range(0, out_len, step):
        block = x[..., a:a + nfft]
        spec = sfft.rfft(block, nfft, axis=-1, workers=FFT_WORKERS)
        spec *= spectrum
        y = sfft.irfft(spec, nfft, axis=-1, workers=FFT_WORKERS)
        m = min(step, out_len - a)
        out[..., a:a + m] = y[..., k - 1:k - 1 + m]
    return out
