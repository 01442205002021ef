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
from ..recording.gaps import fill_gaps
from ..recording.montage import resolve_space
from ..tracks import MuscleTrack, frame_times_s
from .mains import choose_fundamentals, mains_notches, notch_filtfilt
from .normalise import (
    normalisation_references,
    normalisation_segments,
    normalise_envelopes,
)
from .selection import Selection, select_channels
from .settings import ProcessingSettings
from .steps import (
    RECTIFY_TO_RMS,
    design_bandpass,
    design_notch,
    effective_band,
    fft_convolve_valid,
    fir_zero_phase,
    interp_at,
    rms_at_positions,
)

_IIR_TOL = 1e-13  # IIR impulse responses are cut once they fall below this fraction
MIN_RAW_RATE_HZ = 200.0  # below this no EMG band fits under Nyquist: the file holds no raw sEMG


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
    warnings = list(source.meta.get("warnings", ()))
    if settings.nan_policy == "interpolate":
        source = fill_gaps(source, settings.max_gap_s)
    selection = select_channels(source, settings)
    times = frame_times_within(source.n_samples, source.rate_hz, fps, start_s, n_frames, name)
    if source.meta.get("signal") == "envelope":
        values, info = _resample_envelopes(source, selection, times)
    else:
        if source.rate_hz < MIN_RAW_RATE_HZ:
            raise InputError(
                f"{name}: {source.rate_hz:g} Hz is too low for raw sEMG (facial EMG is sampled at "
                f"≥ 1000 Hz; below {MIN_RAW_RATE_HZ:g} Hz no EMG band fits). If the file already holds "
                f"envelopes (processed, rectified or RMS values), read it as envelopes: "
                f"--csv-kind envelope (csv_kind='envelope')")
        # samples so large that their squares overflow (1e200 in a damaged table) end as inf/NaN
        # envelopes, refused below by name rather than warned about by numpy on the way
        with np.errstate(over="ignore", invalid="ignore"):
            fundamentals, mains_note = choose_fundamentals(source, selection.derive, settings.notch_hz)
            if settings.causal:
                values, info = _run_causal_chain(source, selection, settings, times, fps, fundamentals, name)
            else:
                plan = _Plan.build(source.rate_hz, settings, name, fundamentals)
                warnings += plan.warnings
                if source.n_samples < plan.window_samples:
                    raise InputError(
                        f"{name}: {source.n_samples / source.rate_hz:.3f} s of data is shorter than one "
                        f"RMS window ({settings.rms_window_s:g} s); record longer or shorten the window")
                values, info = _run_chain(source, selection, plan, settings, times, fps)
        info["mains"] = mains_note
        _check_envelopes_finite(values, selection.names, name)
    space = resolve_space(selection.names)
    meta: dict = {
        "source": source.source,
        "processing": {**settings.to_dict(), **info, "rate_hz": float(source.rate_hz),
                       "fps": float(fps)},
        "channel_sources": selection.sources,
        "channel_map": selection.report,
    }
    if selection.dropped:
        meta["dropped_channels"] = list(selection.dropped)
    if selection.mirrored:
        meta["mirrored"] = list(selection.mirrored)
    if warnings:
        meta["warnings"] = warnings
    # already-processed envelopes keep the units their file gave ("unknown" when it gave none)
    units = source.meta.get("units", "uV") if source.meta.get("signal") == "envelope" else "uV"
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


def _run_causal_chain(source: RecordingSource, selection: Selection, settings: ProcessingSettings, times, fps: float,
                      fundamentals, name: str) -> tuple[np.ndarray, dict]:
    """``settings.causal``: the live chain's envelopes at ``times`` (:func:`.streaming.causal_frames`).
    The chain starts at the first sample, as a stream of the recording would, so frames lie on
    whole frames of it; the mains fundamentals are the ones found in the file. (Imported here:
    streaming builds on the steps this module imports.)"""
    from .streaming import causal_frames

    first = int(round(float(times[0]) * fps))
    if abs(float(times[0]) * fps - first) > 1e-6:
        raise InputError(f"{name}: the causal chain makes frames at whole frames from the first sample "
                         f"(k / {fps:g} s); a start at {float(times[0]):g} s is not one of them")
    values, info = causal_frames(source, selection, fps, settings, fundamentals, first + len(times))
    return values[first:], info


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
    warnings: list = field(default_factory=list)
    fundamentals_hz: tuple = ()

    @classmethod
    def build(cls, rate_hz: float, s: ProcessingSettings, source: str, fundamentals_hz=None) -> "_Plan":
        fundamentals_hz = s.notch_hz if fundamentals_hz is None else fundamentals_hz
        upper = effective_band(rate_hz, s.band_hz, s.nyquist_fraction, source)[1] if s.band_hz else None
        notches = mains_notches(rate_hz, fundamentals_hz, harmonics=s.notch_harmonics, q=s.notch_q,
                                harmonic_q=s.harmonic_q, upper_hz=upper)
        notch_hz = tuple(f for f, _ in notches)
        sos_list = [design_notch(rate_hz, f, q) for f, q in notches]
        if s.drift_highpass_hz is not None:
            sos_list.append(signal.butter(2, s.drift_highpass_hz, btype="highpass", fs=rate_hz, output="sos"))
        # notches + FIR as one zero-phase kernel for the pieces away from the recording's ends; with
        # several (narrow, long-ringing) notches the kernel is the cascade's, cut where it has decayed
        combined = np.ones(1)
        if len(sos_list) > 1:
            cascade = np.concatenate(sos_list)
            combined = _zero_phase_impulse(cascade, _cascade_reach(cascade))
        else:
            for sos in sos_list:
                combined = signal.fftconvolve(combined, _zero_phase_impulse(sos))
        reach = notch_reach = (len(combined) - 1) // 2
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
        warnings = []
        if band is not None and band[1] < s.band_hz[1] and rate_hz < 1000:
            warnings.append(f"{source}: at {rate_hz:g} Hz the band-pass runs {band[0]:g}–{band[1]:g} Hz "
                            f"(its upper edge capped at 0.9 × Nyquist instead of {s.band_hz[1]:g} Hz); "
                            f"facial sEMG is best sampled at ≥ 1000 Hz")
        return cls(rate_hz, sos_list, notch_hz, notch_reach, fir, band, combined, s.envelope,
                   window, lowpass, reach, warnings=warnings, fundamentals_hz=tuple(fundamentals_hz))

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


def _cascade_reach(sos: np.ndarray) -> int:
    """Samples after which a cascade's transient has decayed: the forward impulse response's tail
    energy below ``_IIR_TOL`` of its whole (bounds the forward-backward response's tail too). Far
    shorter than the sum of the sections' reaches when many narrow notches ring together."""
    bound = sum(_iir_reach(sos[i:i + 1]) for i in range(len(sos)))
    delta = np.zeros(bound)
    delta[0] = 1.0
    energy = np.cumsum(signal.sosfilt(sos, delta)[::-1] ** 2)[::-1]  # energy from n to the end
    below = np.flatnonzero(np.sqrt(energy) < _IIR_TOL * np.sqrt(energy[0]))
    return int(below[0]) + 16 if below.size else bound


def _zero_phase_impulse(sos: np.ndarray, n: int | None = None) -> np.ndarray:
    """Impulse response of forward-backward filtering with ``sos`` (odd length, centred)."""
    n = _iir_reach(sos) if n is None else n
    delta = np.zeros(n)
    delta[0] = 1.0
    h = signal.sosfilt(sos, delta)
    return signal.fftconvolve(h, h[::-1])



def _run_chain(source: RecordingSource, sel: Selection, plan: _Plan,
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


def _check_envelopes_finite(values: np.ndarray, names, source: str) -> None:
    """Envelopes of finite samples are finite unless the samples are beyond any amplifier's range."""
    bad = ~np.isfinite(values).all(axis=0)
    if bad.any():
        which = ", ".join(n for n, b in zip(names, bad) if b)
        raise InputError(f"{source}: channel(s) {which} hold values too large to be sEMG in any unit "
                         f"(their envelopes overflow); the file is damaged or not a recording")


def _piece_envelope(block: np.ndarray, plan: _Plan, local: np.ndarray, *, at_start: bool,
                    at_end: bool) -> np.ndarray:
    """Envelope at ``local`` positions of a piece: the steps one by one at the recording's ends, the
    combined kernel by FFT in between."""
    if (at_start or at_end) and len(plan.notch_sos) > 1:  # the mains runs on into whole-period padding
        y = notch_filtfilt(block, np.concatenate(plan.notch_sos), plan.rate_hz, plan.fundamentals_hz,
                           plan.notch_reach)
        if plan.fir is not None:
            y = fir_zero_phase(y, plan.fir)
        offset = 0
    elif at_start or at_end:
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


def _resample_envelopes(source: RecordingSource, sel: Selection, times: np.ndarray):
    """Already-processed envelopes: linear interpolation at the frame times."""
    data = sel.derive(source.read())
    check_finite(data, list(sel.names), source.rate_hz, source.source or "recording")
    values = interp_at(data, times * source.rate_hz).T
    return values, {"input": "envelope", "input_rate_hz": float(source.rate_hz)}
