"""From raw sEMG to muscle-activity envelopes at a frame rate: EIFER's processing chain.

The default chain is the one of the EIFER / "Mimics, Muscles, and Me" release (FACTS §1):

1. per-channel mean removal;
2. monopolar electrode pairs -> bipolar channels (``montage.resolve_channels``);
3. 50 Hz IIR notch, Q = 2, zero phase (``scipy.signal.iirnotch`` + ``sosfiltfilt``);
   60 Hz and harmonics on request;
4. 10-500 Hz FIR band-pass, 129 Hamming taps at 4096 Hz (scaled with the rate), zero phase,
   the upper edge capped below Nyquist;
5. RMS over 0.5 s (2048 samples at 4096 Hz);
6. the envelope evaluated at the frame times ``start_s + k / fps``.

Each step is a public function on ``(channels, samples)`` arrays; :func:`process_recording`
(or :func:`process_source` for a file opened with ``open_recording``) runs them all and returns a
:class:`~eifer_blender.core.tracks.MuscleTrack`. The alternative envelope is rectification plus a
zero-phase Butterworth low-pass, scaled by sqrt(pi/2) so that a Gaussian signal gets the same
level as with RMS.

Definitions that make the result exact and chunkable
    * FIR zero phase: centred convolution after odd reflection of ``(taps - 1) / 2`` samples at
      each end of the recording.
    * Notch: ``scipy.signal.sosfiltfilt`` with its default odd padding.
    * RMS at time t: square root of the mean of x^2 over ``[t - w/2, t + w/2]``, each sample
      holding its value for one sample period (so fractional window edges and frame times are
      exact); the window is clipped at the ends of the recording.
    * Rectify: ``sosfiltfilt`` of ``|x|``, linearly interpolated at the frame times.

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
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
from scipy import fft as sfft
from scipy import signal

from .errors import InputError
from .montage import MONTAGES, bipolar_matrix, guess_montage, resolve_channels, resolve_space
from .recording import Recording, RecordingSource, check_finite
from .tracks import MuscleTrack

EIFER_TAPS_AT_4096 = 129  # FIR length of the EIFER / MMM chain at its 4096 Hz rate
RECTIFY_TO_RMS = math.sqrt(math.pi / 2)  # E|x| = sigma * sqrt(2/pi) for Gaussian x
_IIR_TOL = 1e-13  # IIR impulse responses are cut once they fall below this fraction
NORMALISATION_METHODS = ("none", "rest", "calibration", "percentile")
FFT_WORKERS = -1  # scipy.fft threads over channels (-1: all cores)


@dataclass(frozen=True)
class ProcessingSettings:
    """Parameters of the chain; the defaults are EIFER's.

    Parameters
    ----------
    remove_mean : bool
        Subtract each channel's mean over the whole recording first.
    notch_hz : tuple of float
        Power-line frequencies to notch (``()`` for none; ``(60.0,)`` in the Americas).
    notch_harmonics : bool
        Also notch the harmonics below Nyquist.
    notch_q : float
        Quality factor of the IIR notch (EIFER: 2, i.e. 25 Hz wide at 50 Hz).
    band_hz : (float, float) or None
        FIR band-pass edges; the upper edge is capped at ``nyquist_fraction`` of Nyquist.
    band_taps : int, "eifer" or "mne"
        FIR length: "eifer" scales 129 taps at 4096 Hz to the rate; "mne" lets
        ``mne.filter.create_filter`` choose (longer, sharper); an odd int is used as it is.
    nyquist_fraction : float
        Cap of the upper band edge as a fraction of Nyquist.
    envelope : {"rms", "rectify"}
        Amplitude estimator.
    rms_window_s : float
        RMS window (0.5 s = 2048 samples at 4096 Hz).
    rectify_lowpass_hz, rectify_order : float, int
        Butterworth low-pass of the rectified signal (zero phase).
    normalise : {"none", "rest", "calibration", "percentile"}
        Per-channel normalisation of the envelopes; references are stored in the track's meta.
    rest_s, calibration_s : tuple of (start_s, stop_s), optional
        Time spans (recording time) of rest / maximal calibration expressions.
    rest_label, calibration_label : str
        Annotation descriptions that mark those spans when no times are given.
    percentiles : (float, float)
        Low and high percentile for "percentile" normalisation (value = (x - low) / (high - low)).
    montage : {"auto", "fridlund22", "kuramoto19"} or None
        Resolve channel names onto a montage (aliases, monopolar pairs); None keeps file names.
    channels : tuple of str, optional
        Output only these channels, in this order (canonical or file names); missing -> error.
    nan_policy : {"raise", "zero"}
        NaN/Inf samples raise an error, or become 0 after mean removal (the MMM practice).
    chunk_s : float or None
        Seconds of output per chunk; None processes the whole array at once.
    """

    remove_mean: bool = True
    notch_hz: tuple[float, ...] = (50.0,)
    notch_harmonics: bool = False
    notch_q: float = 2.0
    band_hz: tuple[float, float] | None = (10.0, 500.0)
    band_taps: int | str = "eifer"
    nyquist_fraction: float = 0.9
    envelope: str = "rms"
    rms_window_s: float = 0.5
    rectify_lowpass_hz: float = 6.0
    rectify_order: int = 4
    normalise: str = "none"
    rest_s: tuple[tuple[float, float], ...] | None = None
    calibration_s: tuple[tuple[float, float], ...] | None = None
    rest_label: str = "rest"
    calibration_label: str = "calibration"
    percentiles: tuple[float, float] = (5.0, 95.0)
    montage: str | None = "auto"
    channels: tuple[str, ...] | None = None
    nan_policy: str = "raise"
    chunk_s: float | None = 60.0

    def __post_init__(self) -> None:
        problems = []
        if self.envelope not in ("rms", "rectify"):
            problems.append(f"envelope must be 'rms' or 'rectify', not {self.envelope!r}")
        if self.normalise not in NORMALISATION_METHODS:
            problems.append(f"normalise must be one of {', '.join(NORMALISATION_METHODS)}, "
                            f"not {self.normalise!r}")
        if not self.rms_window_s > 0:
            problems.append(f"rms_window_s must be positive, got {self.rms_window_s}")
        if self.band_hz is not None and not (0 < self.band_hz[0] < self.band_hz[1]):
            problems.append(f"band_hz must be (low, high) with 0 < low < high, got {self.band_hz}")
        if any(not f > 0 for f in self.notch_hz):
            problems.append(f"notch frequencies must be positive, got {self.notch_hz}")
        if not self.notch_q > 0:
            problems.append(f"notch_q must be positive, got {self.notch_q}")
        if not 0 < self.nyquist_fraction < 1:
            problems.append(f"nyquist_fraction must lie in (0, 1), got {self.nyquist_fraction}")
        if isinstance(self.band_taps, str) and self.band_taps not in ("eifer", "mne"):
            problems.append(f"band_taps must be 'eifer', 'mne' or an odd number, not {self.band_taps!r}")
        if isinstance(self.band_taps, int) and (self.band_taps < 3 or self.band_taps % 2 == 0):
            problems.append(f"band_taps must be odd and >= 3, got {self.band_taps}")
        if self.nan_policy not in ("raise", "zero"):
            problems.append(f"nan_policy must be 'raise' or 'zero', not {self.nan_policy!r}")
        if not (0 <= self.percentiles[0] < self.percentiles[1] <= 100):
            problems.append(f"percentiles must be (low, high) within 0..100, got {self.percentiles}")
        if self.montage not in (None, "auto", *MONTAGES):
            problems.append(f"montage must be auto, {', '.join(MONTAGES)} or None, not {self.montage!r}")
        if self.chunk_s is not None and not self.chunk_s > 0:
            problems.append(f"chunk_s must be positive or None, got {self.chunk_s}")
        if self.rectify_lowpass_hz <= 0 or self.rectify_order < 1:
            problems.append("rectify_lowpass_hz and rectify_order must be positive")
        if problems:
            raise InputError("invalid processing settings: " + "; ".join(problems))

    def to_dict(self) -> dict:
        """Plain JSON-able dict (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ProcessingSettings":
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`InputError`."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"unknown processing settings: {', '.join(unknown)}")
        tuples = {"notch_hz", "band_hz", "percentiles", "channels"}
        fixed = {}
        for key, value in values.items():
            if key in tuples and value is not None:
                value = tuple(value)
            elif key in ("rest_s", "calibration_s") and value is not None:
                value = tuple(tuple(span) for span in value)
            fixed[key] = value
        return cls(**fixed)


# ----------------------------------------------------------------------------------------------
# The steps, one function each


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
    return _fft_convolve_valid(padded, taps)


def bandpass_filter(data: np.ndarray, rate_hz: float, band_hz: tuple[float, float] = (10.0, 500.0),
                    taps: int | str = "eifer", nyquist_fraction: float = 0.9) -> np.ndarray:
    """Zero-phase FIR band-pass (:func:`design_bandpass` + :func:`fir_zero_phase`)."""
    return fir_zero_phase(data, design_bandpass(rate_hz, band_hz, taps, nyquist_fraction))


def frame_times_s(n_samples: int, rate_hz: float, fps: float, start_s: float = 0.0,
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
    return start_s + np.arange(n_frames) / fps


def rms_at(data: np.ndarray, rate_hz: float, times_s: np.ndarray, window_s: float = 0.5) -> np.ndarray:
    """RMS of ``data`` (channels, samples) over ``window_s`` centred at ``times_s``; (frames, channels).

    Each sample holds its value for one sample period, so fractional window edges are exact;
    windows are clipped at the ends of the data.
    """
    data = np.asarray(data, dtype=np.float64)
    centres = np.asarray(times_s, dtype=np.float64) * rate_hz
    return _rms_at_positions(data * data, centres, window_s * rate_hz).T


def rectified_envelope_at(data: np.ndarray, rate_hz: float, times_s: np.ndarray,
                          lowpass_hz: float = 6.0, order: int = 4) -> np.ndarray:
    """Rectify + zero-phase Butterworth low-pass, times sqrt(pi/2), at ``times_s``; (frames, channels)."""
    sos = signal.butter(order, lowpass_hz, btype="lowpass", fs=rate_hz, output="sos")
    smooth = signal.sosfiltfilt(sos, np.abs(np.asarray(data, dtype=np.float64)), axis=-1)
    return _interp_at(smooth, np.asarray(times_s) * rate_hz).T * RECTIFY_TO_RMS


# ----------------------------------------------------------------------------------------------
# Normalisation


def normalise_envelopes(values: np.ndarray, spec: dict, *, times_s: np.ndarray | None = None,
                        segments_s: Sequence[tuple[float, float]] | None = None) -> np.ndarray:
    """Normalise envelopes ``values[frames, channels]`` per channel as ``spec`` says.

    ``spec`` is ``{"method": ...}`` plus either fixed references ``"offset"``/``"scale"``
    (lists, one per channel, as stored in a track's ``meta["normalisation"]``) or the
    parameters to compute them (see :func:`normalisation_references`).
    Result: ``(values - offset) / scale``.
    """
    values = np.asarray(values, dtype=np.float64)
    if spec.get("method", "none") == "none":
        return values
    if "offset" in spec and "scale" in spec:
        offset = np.asarray(spec["offset"], dtype=np.float64)
        scale = np.asarray(spec["scale"], dtype=np.float64)
        if offset.shape != (values.shape[1],) or scale.shape != (values.shape[1],):
            raise InputError(f"normalisation references are for {offset.size} channels, the "
                             f"envelopes have {values.shape[1]}")
    else:
        refs = normalisation_references(values, spec, times_s=times_s, segments_s=segments_s)
        offset, scale = np.asarray(refs["offset"]), np.asarray(refs["scale"])
    return (values - offset) / scale


def normalisation_references(values: np.ndarray, spec: dict, *, times_s: np.ndarray | None = None,
                             segments_s: Sequence[tuple[float, float]] | None = None,
                             names: Sequence[str] | None = None, source: str = "") -> dict:
    """Per-channel references ``{"method", "offset", "scale", ...}`` for :func:`normalise_envelopes`.

    Methods
    -------
    rest
        scale = median envelope over the rest segments (value 1 = rest level); without
        segments, the ``rest_percentile`` (default 10) of the whole track.
    calibration
        scale = maximum envelope over the calibration segments (1 = maximal posed expression);
        without segments, the ``max_percentile`` (default 99) of the whole track.
    percentile
        offset = ``low`` percentile (default 5), scale = ``high`` (95) - ``low`` percentile.
    """
    values = np.asarray(values, dtype=np.float64)
    method = spec.get("method", "none")
    where = f"{source}: " if source else ""
    n_ch = values.shape[1]
    if method == "none":
        return {"method": "none"}
    mask = np.ones(values.shape[0], dtype=bool)
    used_segments = None
    if segments_s:
        if times_s is None:
            raise ValueError("segments_s needs times_s")
        mask = np.zeros(values.shape[0], dtype=bool)
        for a, b in segments_s:
            mask |= (times_s >= a) & (times_s <= b)
        if not mask.any():
            raise InputError(f"{where}the {method} segment(s) {list(segments_s)} contain no frame")
        used_segments = [list(map(float, s)) for s in segments_s]
    sel = values[mask]
    out: dict = {"method": method}
    if method == "rest":
        if used_segments:
            scale = np.median(sel, axis=0)
        else:
            pct = float(spec.get("rest_percentile", 10.0))
            scale = np.percentile(sel, pct, axis=0)
            out["rest_percentile"] = pct
        offset = np.zeros(n_ch)
    elif method == "calibration":
        if used_segments:
            scale = sel.max(axis=0)
        else:
            pct = float(spec.get("max_percentile", 99.0))
            scale = np.percentile(sel, pct, axis=0)
            out["max_percentile"] = pct
        offset = np.zeros(n_ch)
    elif method == "percentile":
        low, high = float(spec.get("low", 5.0)), float(spec.get("high", 95.0))
        offset = np.percentile(sel, low, axis=0)
        scale = np.percentile(sel, high, axis=0) - offset
        out.update(low=low, high=high)
    else:
        raise InputError(f"unknown normalisation method {method!r}; use one of "
                         f"{', '.join(NORMALISATION_METHODS)}")
    flat = np.flatnonzero(~(np.abs(scale) > 1e-12))
    if flat.size:
        labels = [names[i] if names else str(i) for i in flat]
        raise InputError(f"{where}cannot normalise ({method}): reference is zero for channel(s) "
                         f"{', '.join(labels)} (flat or disconnected?)")
    out["offset"] = offset.tolist()
    out["scale"] = scale.tolist()
    if used_segments:
        out["segments_s"] = used_segments
    if names is not None:
        out["channels"] = list(names)
    return out


# ----------------------------------------------------------------------------------------------
# The whole chain


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
    times = frame_times_s(source.n_samples, source.rate_hz, fps, start_s, n_frames, name)
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
        segments = _segments(source, settings, name)
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


def _segments(source: RecordingSource, settings: ProcessingSettings, name: str):
    method = settings.normalise
    if method == "rest":
        spans, label = settings.rest_s, settings.rest_label
    elif method == "calibration":
        spans, label = settings.calibration_s, settings.calibration_label
    else:
        return None
    if spans:
        return [tuple(map(float, s)) for s in spans]
    marked = [(a.onset_s, a.onset_s + a.duration_s) for a in source.annotations
              if a.description.strip().lower() == label.lower() and a.duration_s > 0]
    return marked or None


# ----------------------------------------------------------------------------------------------
# Internals: the chunked chain


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


def _rms_at_positions(power: np.ndarray, centres: np.ndarray, window: float) -> np.ndarray:
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


def _interp_at(smooth: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``smooth[ch, samples]`` at fractional sample positions; (ch, frames)."""
    n = smooth.shape[-1]
    positions = np.clip(positions, 0, n - 1)
    i0 = np.minimum(np.floor(positions).astype(np.int64), n - 2) if n > 1 else np.zeros(len(positions), int)
    frac = positions - i0
    if n == 1:
        return np.repeat(smooth, len(positions), axis=-1)
    return smooth[..., i0] * (1 - frac) + smooth[..., i0 + 1] * frac


def _fft_convolve_valid(x: np.ndarray, kernel: np.ndarray, cache: dict | None = None) -> np.ndarray:
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
        y = _fft_convolve_valid(block, plan.combined, plan.kernel_spectra)
        offset = (len(plan.combined) - 1) // 2
    if plan.envelope == "rms":
        y = np.square(y, out=y) if y is not block else y * y
        return _rms_at_positions(y, local - offset, plan.window_samples).T
    smooth = signal.sosfiltfilt(plan.lowpass_sos, np.abs(y), axis=-1)
    return (_interp_at(smooth, local - offset) * RECTIFY_TO_RMS).T


def _resample_envelopes(source: RecordingSource, sel: _Selection, times: np.ndarray):
    """Already-processed envelopes: linear interpolation at the frame times."""
    data = sel.derive(source.read())
    check_finite(data, list(sel.names), source.rate_hz, source.source or "recording")
    values = _interp_at(data, times * source.rate_hz).T
    return values, {"input": "envelope", "input_rate_hz": float(source.rate_hz)}


__all__ = [
    "ProcessingSettings", "process_recording", "process_source", "remove_mean", "notch_filter",
    "notch_frequencies", "design_notch", "design_bandpass", "effective_band", "bandpass_filter",
    "fir_zero_phase", "frame_times_s", "rms_at", "rectified_envelope_at", "normalise_envelopes",
    "normalisation_references", "NORMALISATION_METHODS",
]
