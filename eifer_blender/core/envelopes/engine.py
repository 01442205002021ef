"""The whole chain, chunked: a recording in, a MuscleTrack of envelopes at the frame rate out.

Chunking
    The recording is processed in pieces of ``chunk_s`` seconds of output frames. Each piece
    reads enough context on both sides for every step (notch decay to 1e-13, half the FIR, half
    the window) and is discarded there, so the chunked result equals whole-array processing
    to rounding (tested at 1e-6 relative; typically 1e-12). Pieces away from the recording's
    ends apply notch and band-pass as one combined zero-phase kernel by FFT (the notch's
    zero-phase impulse response is that of ``sosfiltfilt`` away from the ends); the first and
    last pieces run the steps one by one, as whole-array processing does. Memory is bounded
    by the piece size whatever the recording's length.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from ..errors import InputError
from ..recording import Recording, RecordingSource, check_finite
from ..recording.montage import (
    bipolar_matrix,
    guess_montage,
    resolve_channels,
    resolve_space,
)
from ..tracks import MuscleTrack, frame_times_s
from .normalise import (
    normalisation_references,
    normalisation_segments,
    normalise_envelopes,
)
from .settings import ProcessingSettings
from .steps import (
    RECTIFY_TO_RMS,
    design_bandpass,
    design_notch,
    effective_band,
    fft_convolve_valid,
    fir_zero_phase,
    interp_at,
    notch_frequencies,
    rms_at_positions,
)

_IIR_TOL = 1e-13  # IIR impulse responses are cut once they fall below this fraction


def frame_times_within(n_samples: int, rate_hz: float, fps: float, start_s: float = 0.0,
                       n_frames: int | None = None, source: str = "") -> np.ndarray:
    """Frame times ``start_s + k / fps`` that lie within the recording (last sample included).

    Raises
    ------
    InputError
        If ``start_s`` lies outside the recording or ``n_frames`` asks for frames past its end.
    """
    where = f"{source}: " if source else ""
    if not fps > 0:
        raise InputError(f"fps must be positive, got {fps}")
    last_s = (n_samples - 1) / rate_hz
    if not 0 <= start_s <= last_s:
        raise InputError(f"{where}start {start_s:g} s lies outside the recording (0-{last_s:.3f} s)")
    available = int(math.floor((last_s - start_s) * fps + 1e-9)) + 1
    if n_frames is None:
        n_frames = available
    elif n_frames > available:
        raise InputError(f"{where}{n_frames} frames at {fps:g} fps from {start_s:g} s run past the "
                         f"end of the recording ({available} frames fit)")
    return frame_times_s(n_frames, fps, start_s)


def process_recording(recording: Recording | RecordingSource, fps: float,
                      settings: ProcessingSettings = ProcessingSettings(), *,
                      start_s: float = 0.0, n_frames: int | None = None) -> MuscleTrack:
    """Turn a recording into muscle-activity envelopes at ``fps`` (EIFER's chain by default).

    This is the one function the add-on, the CLI and model training call to make features;
    its signature is stable.

    Parameters
    ----------
    recording : Recording or RecordingSource
        Raw sEMG in µV (``meta["signal"] == "envelope"`` marks already-processed envelopes,
        which are only resampled to ``fps`` and normalised).
    fps : float
        Output frame rate (the scene's fps).
    settings : ProcessingSettings
        Chain parameters; the defaults reproduce EIFER.
    start_s : float
        Recording time of frame 0 (to sync with a video that starts later).
    n_frames : int, optional
        Number of frames (default: all that fit in the recording).

    Returns
    -------
    MuscleTrack
        ``values[frames, channels]``, units "uV" (or "normalised"), space "fridlund22" /
        "kuramoto19" when the channels resolve onto a montage (else "emg"), ``meta`` with
        "processing" (settings and derived filter parameters), "normalisation" (method and
        per-channel references), "channel_sources" and "source".

    Raises
    ------
    InputError
        Bad samples (NaN/Inf), rate too low for the band, less data than one RMS window,
        missing or duplicate channels, start outside the recording.
    """
    source = (recording if isinstance(recording, RecordingSource)
              else RecordingSource.from_recording(recording))
    return process_source(source, fps, settings, start_s=start_s, n_frames=n_frames)


def process_source(source: RecordingSource, fps: float,
                   settings: ProcessingSettings = ProcessingSettings(), *,
                   start_s: float = 0.0, n_frames: int | None = None) -> MuscleTrack:
    """:func:`process_recording` for a recording opened in pieces (file, memmap, generator)."""
    name = source.source or "recording"
    selection = _select_channels(source, settings)
    times = frame_times_within(source.n_samples, source.rate_hz, fps, start_s, n_frames, name)
    if source.meta.get("signal") == "envelope":
        values, info = _resample_envelopes(source, selection, times)
    else:
        plan = _Plan.build(source.rate_hz, settings, name)
        if source.n_samples < plan.window_samples:
            raise InputError(
                f"{name}: {source.n_samples / source.rate_hz:.3f} s of data is shorter than one "
                f"RMS window ({settings.rms_window_s:g} s); record longer or shorten the window")
        values, info = _run_chain(source, selection, plan, settings, times, fps)
    space = resolve_space(selection.names)
    meta: dict = {
        "source": source.source,
        "processing": {**settings.to_dict(), **info, "rate_hz": float(source.rate_hz),
                       "fps": float(fps)},
        "channel_sources": selection.sources,
    }
    if selection.dropped:
        meta["dropped_channels"] = list(selection.dropped)
    units = "uV"
    if settings.normalise != "none":
        segments = normalisation_segments(source, settings, name)
        spec = {"method": settings.normalise, "low": settings.percentiles[0],
                "high": settings.percentiles[1]}
        refs = normalisation_references(values, spec, times_s=times, segments_s=segments,
                                        names=selection.names, source=name)
        values = normalise_envelopes(values, refs)
        units = "normalised"
        meta["normalisation"] = refs
    else:
        meta["normalisation"] = {"method": "none"}
    return MuscleTrack(values, selection.names, float(fps), space, units, float(times[0]), meta)


# ----------------------------------------------------------------------------------------------
# Internals: channel selection


@dataclass
class _Selection:
    names: tuple[str, ...]
    plus: np.ndarray  # input row per output channel
    minus: np.ndarray  # input row subtracted, -1 for none
    sources: dict[str, str]
    dropped: tuple[str, ...] = ()

    def derive(self, block: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
        """Output channels from input rows: one row copy or difference each, minus ``mean``."""
        out = np.empty((len(self.plus), block.shape[-1]))
        for row, (p, m) in enumerate(zip(self.plus, self.minus)):  # rows, not samples
            if m >= 0:
                np.subtract(block[p], block[m], out=out[row])
            else:
                out[row] = block[p]
            if mean is not None:
                out[row] -= mean[row]
        return out

    def derive_sums(self, row_sums: np.ndarray) -> np.ndarray:
        """Sums of the output channels from sums of the input rows."""
        out = row_sums[self.plus].copy()
        has_minus = self.minus >= 0
        out[has_minus] -= row_sums[self.minus[has_minus]]
        return out


def _select_channels(source: RecordingSource, settings: ProcessingSettings) -> _Selection:
    name = source.source or "recording"
    types = list(source.channel_types)
    names = list(source.channel_names)
    emg = [i for i, t in enumerate(types) if t == "emg"]
    # formats that cannot store the EMG type (BrainVision, CNT, ...) say "eeg" or "misc"
    candidates = emg or [i for i, t in enumerate(types) if t in ("eeg", "misc", "emg")]
    if not candidates:
        raise InputError(f"{name}: no EMG channels (channel types: {', '.join(sorted(set(types)))})")
    cand_names = [names[i] for i in candidates]
    montage = settings.montage
    if montage == "auto":
        montage = guess_montage(cand_names)
    if montage is not None:
        cmap = resolve_channels(cand_names, montage, source=name)
        if not cmap.canonical:
            raise InputError(f"{name}: no channel matches the {montage} montage; channels: "
                             f"{', '.join(cand_names)}")
        matrix, out = bipolar_matrix(cand_names, cmap)
        plus = np.array([candidates[int(np.flatnonzero(row > 0)[0])] for row in matrix])
        minus = np.array([candidates[int(np.flatnonzero(row < 0)[0])] if (row < 0).any() else -1
                          for row in matrix])
        sel = _Selection(tuple(out), plus, minus, cmap.sources(), cmap.unknown)
    else:
        sel = _Selection(tuple(cand_names), np.array(candidates), -np.ones(len(candidates), int),
                         {n: n for n in cand_names})
    if settings.channels is not None:
        wanted = list(settings.channels)
        lookup = {n: i for i, n in enumerate(sel.names)}
        for i, n in enumerate(sel.names):  # also accept the file's own labels
            lookup.setdefault(sel.sources.get(n, n), i)
        missing = [w for w in wanted if w not in lookup]
        if missing:
            raise InputError(f"{name}: missing channels: {', '.join(missing)} (the file has "
                             f"{', '.join(sel.names)})")
        rows = [lookup[w] for w in wanted]
        out_names = tuple(sel.names[r] for r in rows)
        if len(set(out_names)) != len(out_names):
            raise InputError(f"{name}: channels requested twice: {', '.join(wanted)}")
        sel = _Selection(out_names, sel.plus[rows], sel.minus[rows],
                         {n: sel.sources[n] for n in out_names},
                         tuple(n for n in sel.names if n not in out_names) + sel.dropped)
    return sel



@dataclass
class _Plan:
    rate_hz: float
    notch_sos: list
    notch_applied_hz: tuple
    notch_reach: int  # samples over which the notches' transients decay (sum over notches)
    fir: np.ndarray | None
    band_applied_hz: tuple | None
    combined: np.ndarray  # notch(es) + FIR as one zero-phase kernel (odd length)
    envelope: str
    window_samples: float
    lowpass_sos: np.ndarray | None
    reach: int  # context each side of a frame centre that influences its value
    kernel_spectra: dict = field(default_factory=dict)

    @classmethod
    def build(cls, rate_hz: float, s: ProcessingSettings, source: str) -> "_Plan":
        notch_hz = notch_frequencies(rate_hz, s.notch_hz, s.notch_harmonics, s.notch_q)
        sos_list = [design_notch(rate_hz, f, s.notch_q) for f in notch_hz]
        combined = np.ones(1)
        reach = 0
        for sos in sos_list:
            impulse = _zero_phase_impulse(sos)
            combined = signal.fftconvolve(combined, impulse)
            reach += (len(impulse) - 1) // 2
        notch_reach = reach
        fir = band = None
        if s.band_hz is not None:
            fir = design_bandpass(rate_hz, s.band_hz, s.band_taps, s.nyquist_fraction, source)
            band = effective_band(rate_hz, s.band_hz, s.nyquist_fraction, source)
            combined = signal.fftconvolve(combined, fir)
            reach += (len(fir) - 1) // 2
        window = s.rms_window_s * rate_hz
        lowpass = None
        if s.envelope == "rms":
            reach += int(math.ceil(window / 2)) + 2
        else:
            lowpass = signal.butter(s.rectify_order, s.rectify_lowpass_hz, btype="lowpass",
                                    fs=rate_hz, output="sos")
            reach += _iir_reach(lowpass) + 2
        return cls(rate_hz, sos_list, notch_hz, notch_reach, fir, band, combined, s.envelope,
                   window, lowpass, reach)

    def info(self) -> dict:
        return {"notch_applied_hz": list(self.notch_applied_hz),
                "band_applied_hz": list(self.band_applied_hz) if self.band_applied_hz else None,
                "fir_taps": int(len(self.fir)) if self.fir is not None else 0,
                "rms_window_samples": float(self.window_samples)}


def _iir_reach(sos: np.ndarray) -> int:
    """Samples after which the slowest pole of ``sos`` has decayed below ``_IIR_TOL``."""
    radius = max(float(np.max(np.abs(np.roots(sec[3:])))) for sec in sos)
    radius = min(radius, 1 - 1e-12)
    # the impulse response of a pole pair grows like n * r^n at worst; add a safety margin
    return int(math.ceil(math.log(_IIR_TOL) / math.log(radius) * 1.2)) + 16


def _zero_phase_impulse(sos: np.ndarray) -> np.ndarray:
    """Impulse response of forward-backward filtering with ``sos`` (odd length, centred)."""
    n = _iir_reach(sos)
    delta = np.zeros(n)
    delta[0] = 1.0
    h = signal.sosfilt(sos, delta)
    return signal.fftconvolve(h, h[::-1])



def _run_chain(source: RecordingSource, sel: _Selection, plan: _Plan,
               settings: ProcessingSettings, times: np.ndarray, fps: float) -> tuple[np.ndarray, dict]:
    name = source.source or "recording"
    n = source.n_samples
    rate = source.rate_hz
    n_out = len(sel.names)
    positions = times * rate
    read_block = int(max(4 * plan.reach, (settings.chunk_s or 0) * rate, 1))

    # pass 1: per-channel means of the derived channels, and a scan for NaN/Inf (a row's sum
    # is finite exactly when all its samples are, so clean rows cost one sum)
    mean = np.zeros(n_out)
    if settings.remove_mean or settings.nan_policy == "raise":
        total = np.zeros(n_out)
        count = np.zeros(n_out)
        step = n if settings.chunk_s is None else read_block
        for a in range(0, n, step):
            raw = source.read(a, a + step)
            sums = sel.derive_sums(raw.sum(axis=-1))
            if np.isfinite(sums).all():
                total += sums
                count += raw.shape[-1]
                continue
            block = sel.derive(raw)
            if settings.nan_policy == "raise":
                check_finite(block, list(sel.names), rate, name, offset_samples=a)
            finite = np.isfinite(block)
            total += np.where(finite, block, 0.0).sum(axis=-1)
            count += finite.sum(axis=-1)
        if settings.remove_mean:
            mean = total / np.maximum(count, 1)

    # pass 2: frames in chunks; each chunk reads `reach` samples of context on both sides
    values = np.empty((len(times), n_out))
    if settings.chunk_s is None:
        groups = [(0, len(times))]
    else:
        per = max(1, int(round(settings.chunk_s * fps)))
        groups = [(k, min(len(times), k + per)) for k in range(0, len(times), per)]
    interior = 0
    for k0, k1 in groups:
        if settings.chunk_s is None:
            a, b = 0, n
        else:
            a = max(0, int(math.floor(positions[k0])) - plan.reach)
            b = min(n, int(math.ceil(positions[k1 - 1])) + plan.reach + 1)
            # a piece must be long enough for the odd reflection at the ends
            if b - a < 2 * plan.reach + 2:
                a, b = max(0, b - 2 * plan.reach - 2), min(n, a + 2 * plan.reach + 2)
        block = sel.derive(source.read(a, b), mean)
        if settings.nan_policy == "zero":
            block[~np.isfinite(block)] = 0.0
        local = positions[k0:k1] - a
        values[k0:k1] = _piece_envelope(block, plan, local, at_start=a == 0, at_end=b == n)
        interior += a > 0 and b < n
    return values, {**plan.info(), "pieces": len(groups), "interior_pieces": interior,
                    "context_samples": plan.reach}


def _piece_envelope(block: np.ndarray, plan: _Plan, local: np.ndarray, *, at_start: bool,
                    at_end: bool) -> np.ndarray:
    """Envelope at ``local`` positions of a piece; exact steps at the recording's ends."""
    if at_start or at_end:
        y = block
        for sos in plan.notch_sos:
            y = signal.sosfiltfilt(sos, y, axis=-1)
        if plan.fir is not None:
            y = fir_zero_phase(y, plan.fir)
        offset = 0
    else:
        y = fft_convolve_valid(block, plan.combined, plan.kernel_spectra)
        offset = (len(plan.combined) - 1) // 2
    if plan.envelope == "rms":
        y = np.square(y, out=y) if y is not block else y * y
        return rms_at_positions(y, local - offset, plan.window_samples).T
    smooth = signal.sosfiltfilt(plan.lowpass_sos, np.abs(y), axis=-1)
    return (interp_at(smooth, local - offset) * RECTIFY_TO_RMS).T


def _resample_envelopes(source: RecordingSource, sel: _Selection, times: np.ndarray):
    """Already-processed envelopes: linear interpolation at the frame times."""
    data = sel.derive(source.read())
    check_finite(data, list(sel.names), source.rate_hz, source.source or "recording")
    values = interp_at(data, times * source.rate_hz).T
    return values, {"input": "envelope", "input_rate_hz": float(source.rate_hz)}
