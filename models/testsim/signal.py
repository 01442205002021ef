"""sEMG synthesis of the test simulator: geometry, crosstalk, carriers, amplifier, artefacts.

FROZEN, TEST-ONLY: part of :mod:`models.testsim`; never use it to train or tune a model.

Signal model for Fridlund channel ``c`` (bipolar, µV)::

    x_c(t) = gain · Σ_k W[c, k] · r_k · (1 + (R_k - 1) · a_k(t)) · m_k(t) · n_k(t)
           + noise_c(t) + mains_c(t) + wander_c(t) + motion_c(t)

* Muscles are **line segments** (fibre direction) with a half-width and a depth
  (:data:`GEOMETRY`, subject's left side; the right side is mirrored).
* ``W`` (:func:`mixing_matrix`): **anisotropic crosstalk**. From electrode to muscle, the
  distance beyond the segment's ends along the fibres is divided by ``ALONG_FIBRE`` (the
  potential travels along the fibres), the distance across the fibres beyond the half-width is
  taken as it is, ``r = sqrt((along / 2.2)^2 + across^2 + depth^2)``, ``W = D · exp(-r / λ)`` with
  λ per subject 4-5.5 mm (so crosstalk reaches 4-15 mm, further along the fibres), and
  ``D = 0.35 + 0.65 cos^2(electrode axis - fibre angle)`` (a bipolar pair along the fibres sees
  more). Electrodes are **shifted per subject up to 10 mm** (the axis keeps its angle).
* ``r_k``: resting RMS (1.5-3.5 µV, tonic), ``R_k``: full-contraction / rest ratio (10-16; masseter
  25-40, blinks ~200): expressions reach only **2-10× the resting envelope**.
* ``n_k``: unit-variance Gaussian carriers **shaped in the frequency domain**: corrugator a
  narrow peak at ~31 Hz plus a hump at ~93 Hz (van Boxtel 2001), the others a broad log-normal
  spectrum peaking at 50-150 Hz.
* ``gain``: amplifier gain 0.3-3× on the muscle signal (not on noise or mains).
* ``mains``: 50 (or 60) Hz with harmonics up to the 7th, 5-25 µV RMS at the fundamental;
  ``noise``: white 0.5-1.2 µV; ``wander``: slow drift; ``motion``: low-frequency transients
  (:func:`motion_events`) near a random point of the face.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eifer_blender.core.recording.montage import FRIDLUND22, fridlund_sites_mm

from .face import CHANNEL_STEM, MUSCLE_INDEX, MUSCLES, SIDES, SOURCE_NAMES

ALONG_FIBRE = 2.2  # distances along the fibres count this much less
MAX_SHIFT_MM = 10.0
GAIN_RANGE = (0.3, 3.0)
MAINS_HARMONICS = (1, 2, 3, 4, 5, 6, 7)
_HARMONIC_LEVELS = np.array([1.0, 0.3, 0.45, 0.1, 0.25, 0.05, 0.12])

# muscle: (start (x, y) mm, end (x, y) mm, half-width mm, depth mm, spectral peak Hz) on the subject's left
GEOMETRY: dict[str, tuple[tuple[float, float], tuple[float, float], float, float, float]] = {
    "frontalis_medial": ((10.0, 55.0), (10.0, 80.0), 6.0, 1.0, 60.0),
    "frontalis_lateral": ((32.0, 52.0), (34.0, 78.0), 7.0, 1.0, 65.0),
    "corrugator": ((12.0, 49.0), (32.0, 56.0), 3.0, 3.0, 31.0),  # spectrum: see carrier_psd
    "depressor_supercilii": ((8.0, 42.0), (10.0, 56.0), 3.0, 1.5, 50.0),
    "levator_labii": ((18.0, 14.0), (32.0, -32.0), 4.0, 1.0, 80.0),
    "orbicularis_oris": ((4.0, -50.0), (30.0, -54.0), 4.0, 1.0, 95.0),
    "dao": ((30.0, -55.0), (24.0, -85.0), 5.0, 1.0, 85.0),
    "mentalis": ((6.0, -58.0), (6.0, -78.0), 4.0, 2.0, 100.0),
    "orbicularis_oculi": ((30.0, 2.0), (54.0, 20.0), 5.0, 0.5, 64.0),
    "zygomaticus": ((30.0, -45.0), (62.0, -5.0), 4.0, 1.5, 75.0),
    "masseter": ((62.0, -10.0), (72.0, -72.0), 7.0, 2.0, 120.0),
    "levator_palpebrae": ((30.0, 24.0), (30.0, 32.0), 5.0, 8.0, 100.0),
    "orbicularis_oculi_pretarsal": ((22.0, 20.0), (46.0, 20.0), 4.0, 1.0, 70.0),
    "buccinator": ((30.0, -50.0), (58.0, -40.0), 10.0, 5.0, 90.0),  # broad, under the cheek
    "risorius": ((32.0, -54.0), (60.0, -58.0), 4.0, 1.0, 85.0),
    "depressor_labii": ((12.0, -58.0), (16.0, -78.0), 5.0, 2.0, 90.0),
    "jaw_openers": ((15.0, -90.0), (35.0, -95.0), 8.0, 12.0, 130.0),
}
# resting RMS (µV, at gain 1) and full/rest ratio range per muscle; defaults for the rest
REST_UV: dict[str, float] = {"masseter": 3.0, "zygomaticus": 2.5, "corrugator": 2.5,
                             "orbicularis_oculi_pretarsal": 0.8, "levator_palpebrae": 1.0,
                             "buccinator": 1.5, "jaw_openers": 1.5}
REST_UV_DEFAULT = 2.2
RATIO_RANGE: dict[str, tuple[float, float]] = {"masseter": (25.0, 40.0), "jaw_openers": (15.0, 25.0),
                                               "orbicularis_oculi_pretarsal": (150.0, 250.0)}
RATIO_DEFAULT = (10.0, 16.0)


def _mirror(point):
    return (-point[0], point[1])


def _segments() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per source (SOURCE_NAMES order): start (n, 2), end (n, 2), half-width (n,), depth (n,)."""
    starts, ends, widths, depths = [], [], [], []
    for muscle in MUSCLES:
        p0, p1, width, depth, _ = GEOMETRY[muscle]
        for side in SIDES:
            starts.append(_mirror(p0) if side == "R" else p0)
            ends.append(_mirror(p1) if side == "R" else p1)
            widths.append(width)
            depths.append(depth)
    return np.array(starts), np.array(ends), np.array(widths), np.array(depths)


def fibre_angles_rad() -> np.ndarray:
    """Fibre direction of every source (SOURCE_NAMES order), radians in the face frame."""
    starts, ends, _, _ = _segments()
    d = ends - starts
    return np.arctan2(d[:, 1], d[:, 0])


def electrode_axes_rad() -> np.ndarray:
    """Axis of each bipolar pair (FRIDLUND22 order): along the fibres of the muscle under it."""
    angles = fibre_angles_rad()
    out = []
    for channel in FRIDLUND22:
        stem, side = channel.rsplit("_", 1)
        muscle = next(m for m, s in CHANNEL_STEM.items() if s == stem)
        out.append(angles[SOURCE_NAMES.index(f"{muscle}_{side}")])
    return np.array(out)


def crosstalk_weight(electrode_mm: np.ndarray, axis_rad, start_mm: np.ndarray, end_mm: np.ndarray,
                     half_width_mm, depth_mm, spread_mm: float) -> np.ndarray:
    """Pick-up of a muscle segment on a bipolar electrode (broadcasts over leading axes).

    ``electrode_mm``, ``start_mm``, ``end_mm``: (..., 2). Anisotropic: depends on the distance
    along and across the fibres separately and on the angle between the pair and the fibres.
    """
    d = end_mm - start_mm
    length = np.linalg.norm(d, axis=-1)
    u = d / length[..., None]
    rel = electrode_mm - start_mm
    along = rel[..., 0] * u[..., 0] + rel[..., 1] * u[..., 1]
    across = np.abs(rel[..., 0] * u[..., 1] - rel[..., 1] * u[..., 0])
    beyond = np.maximum(0.0, np.maximum(-along, along - length))
    outside = np.maximum(0.0, across - half_width_mm)
    r = np.sqrt((beyond / ALONG_FIBRE) ** 2 + outside ** 2 + np.asarray(depth_mm) ** 2)
    fibre = np.arctan2(u[..., 1], u[..., 0])
    direction = 0.35 + 0.65 * np.cos(axis_rad - fibre) ** 2
    return direction * np.exp(-r / spread_mm)


def electrode_positions_mm(shifts_mm: np.ndarray) -> np.ndarray:
    """Fridlund sites (22, 2) plus the subject's shifts."""
    return fridlund_sites_mm() + shifts_mm


def mixing_matrix(shifts_mm: np.ndarray, spread_mm: float) -> np.ndarray:
    """W (22 channels, sources): each source's pick-up on each channel (before rest levels and gain)."""
    starts, ends, widths, depths = _segments()
    electrodes = electrode_positions_mm(shifts_mm)[:, None, :]
    axes = electrode_axes_rad()[:, None]
    return crosstalk_weight(electrodes, axes, starts[None], ends[None], widths[None], depths[None],
                            spread_mm)


# ---------------------------------------------------------------------------------------------
# Spectra


def carrier_psd(freqs_hz: np.ndarray, muscle: str, peak_hz: float) -> np.ndarray:
    """Power spectral density shape of a muscle's carrier (arbitrary scale)."""
    f = np.asarray(freqs_hz, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logf = np.log(np.maximum(f, 1e-3) / peak_hz)
    if muscle == "corrugator":  # narrow peak near 31 Hz, second hump near 93 Hz (3rd harmonic)
        psd = (np.exp(-0.5 * ((f - peak_hz) / 3.0) ** 2)
               + 0.35 * np.exp(-0.5 * ((f - 3.0 * peak_hz) / 9.0) ** 2)
               + 0.03 * np.exp(-0.5 * (np.log(np.maximum(f, 1e-3) / 70.0) / 0.6) ** 2))
    else:  # broad log-normal hump
        psd = np.exp(-0.5 * (logf / 0.55) ** 2)
    psd *= (f / (f + 8.0)) ** 4  # no DC
    return psd


def shaped_noise(rng: np.random.Generator, psds: np.ndarray, n_samples: int) -> np.ndarray:
    """Unit-variance Gaussian noise (rows, n_samples) with the given PSD shapes (rows, n//2+1)."""
    n_freq = n_samples // 2 + 1
    spectrum = rng.standard_normal((psds.shape[0], n_freq)) + 1j * rng.standard_normal((psds.shape[0], n_freq))
    spectrum *= np.sqrt(psds)
    spectrum[:, 0] = 0.0
    out = np.fft.irfft(spectrum, n=n_samples, axis=1)
    out /= np.maximum(out.std(axis=1, keepdims=True), 1e-12)
    return out


# ---------------------------------------------------------------------------------------------
# Subjects


@dataclass
class SignalSubject:
    """Everything about a person and their electrodes that shapes the signal."""

    subject_id: int
    shifts_mm: np.ndarray  # (22, 2) electrode shifts, |shift| <= 10 mm
    spread_mm: float  # λ of the crosstalk law
    rest_uv: np.ndarray  # (sources,) resting RMS at gain 1
    ratio: np.ndarray  # (sources,) full-contraction / rest amplitude
    peak_hz: np.ndarray  # (sources,) carrier spectral peak
    gain: float  # amplifier gain on the muscle signal
    noise_uv: np.ndarray  # (22,)
    mains_uv: float  # RMS of the fundamental
    mains_channel: np.ndarray  # (22,) per-channel factor (electrode impedance)
    wander_uv: np.ndarray  # (22,)
    motion_per_min: float

    def mixing(self) -> np.ndarray:
        return mixing_matrix(self.shifts_mm, self.spread_mm)


def make_signal_subject(subject_id: int) -> SignalSubject:
    """The signal parameters of test subject ``subject_id`` (same id -> same subject)."""
    rng = np.random.default_rng([0x7E57, 2, int(subject_id)])
    n_ch, n_src = len(FRIDLUND22), len(SOURCE_NAMES)
    direction = rng.uniform(0, 2 * np.pi, n_ch)
    # a common face-wide displacement plus each electrode's own, capped at 10 mm
    common_angle = rng.uniform(0, 2 * np.pi)
    common = rng.uniform(0.0, 4.0) * np.array([np.cos(common_angle), np.sin(common_angle)])
    own = rng.uniform(0.0, 1.0, n_ch) ** 0.7 * 8.0
    shifts = common + own[:, None] * np.stack([np.cos(direction), np.sin(direction)], axis=1)
    norms = np.linalg.norm(shifts, axis=1, keepdims=True)
    shifts *= np.minimum(1.0, MAX_SHIFT_MM / np.maximum(norms, 1e-9))
    muscle_scale = np.repeat(rng.lognormal(0.0, 0.25, len(MUSCLES)), 2) * rng.lognormal(0.0, 0.08, n_src)
    rest = np.repeat([REST_UV.get(m, REST_UV_DEFAULT) for m in MUSCLES], 2) * muscle_scale
    low = np.repeat([RATIO_RANGE.get(m, RATIO_DEFAULT)[0] for m in MUSCLES], 2)
    high = np.repeat([RATIO_RANGE.get(m, RATIO_DEFAULT)[1] for m in MUSCLES], 2)
    peaks = np.repeat([GEOMETRY[m][4] for m in MUSCLES], 2)
    peaks = peaks * np.repeat(rng.uniform(0.92, 1.08, len(MUSCLES)), 2)
    corr = [SOURCE_NAMES.index(f"corrugator_{s}") for s in SIDES]
    peaks[corr] = rng.uniform(29.5, 32.5)
    return SignalSubject(
        subject_id=int(subject_id), shifts_mm=shifts, spread_mm=float(rng.uniform(4.0, 5.5)),
        rest_uv=rest, ratio=rng.uniform(low, high), peak_hz=peaks,
        gain=float(np.exp(rng.uniform(np.log(GAIN_RANGE[0]), np.log(GAIN_RANGE[1])))),
        noise_uv=rng.uniform(0.5, 1.2, n_ch), mains_uv=float(rng.uniform(5.0, 25.0)),
        mains_channel=rng.uniform(0.5, 1.5, n_ch), wander_uv=rng.uniform(2.0, 6.0, n_ch),
        motion_per_min=float(rng.uniform(1.0, 3.0)))


# ---------------------------------------------------------------------------------------------
# Synthesis


def frames_to_samples(values: np.ndarray, fps: float, n_samples: int, rate_hz: float) -> np.ndarray:
    """Linear interpolation of frame values (frames, k) to sample times -> (k, n_samples)."""
    n_frames = values.shape[0]
    pos = np.arange(n_samples) / rate_hz * fps
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, max(n_frames - 2, 0))
    frac = np.clip(pos - i0, 0.0, 1.0)[:, None]
    i1 = np.minimum(i0 + 1, n_frames - 1)
    return (values[i0] * (1.0 - frac) + values[i1] * frac).T


def motion_events(rng: np.random.Generator, duration_s: float, per_min: float) -> list[dict]:
    """Motion artefacts: onset, duration, rise/decay times, peak µV and a centre on the face."""
    count = rng.poisson(per_min * duration_s / 60.0)
    if duration_s >= 15.0:
        count = max(count, 1)
    events = []
    for onset in np.sort(rng.uniform(0.5, max(duration_s - 2.0, 0.6), count)):
        decay = rng.uniform(0.15, 0.5)
        events.append({"onset_s": float(onset), "duration_s": float(min(6 * decay, duration_s - onset)),
                       "rise_s": float(rng.uniform(0.02, 0.05)), "decay_s": float(decay),
                       "peak_uv": float(rng.uniform(80.0, 400.0)),
                       "centre_mm": (float(rng.uniform(-70, 70)), float(rng.uniform(-70, 60)))})
    return events


def _motion(events: list[dict], rng: np.random.Generator, n_samples: int, rate_hz: float) -> np.ndarray:
    out = np.zeros((len(FRIDLUND22), n_samples))
    sites = fridlund_sites_mm()
    for ev in events:
        i0 = int(ev["onset_s"] * rate_hz)
        i1 = min(n_samples, i0 + int(ev["duration_s"] * rate_hz) + 1)
        t = np.arange(i1 - i0) / rate_hz
        shape = np.exp(-t / ev["decay_s"]) - np.exp(-t / ev["rise_s"])
        shape /= max(shape.max(), 1e-12)
        distance = np.linalg.norm(sites - np.array(ev["centre_mm"]), axis=1)
        weight = np.exp(-distance / 25.0) * rng.choice([-1.0, 1.0], len(FRIDLUND22))
        out[:, i0:i1] += ev["peak_uv"] * weight[:, None] * shape[None, :]
    return out


def mains(subject: SignalSubject, rng: np.random.Generator, n_samples: int, rate_hz: float,
          mains_hz: float) -> np.ndarray:
    """Power-line hum (22, n): fundamental + harmonics below Nyquist, per-channel amplitude/phase."""
    t = np.arange(n_samples) / rate_hz
    out = np.zeros((len(FRIDLUND22), n_samples))
    levels = _HARMONIC_LEVELS * rng.uniform(0.7, 1.3, len(MAINS_HARMONICS))
    drift = 1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.02, 0.1) * t + rng.uniform(0, 2 * np.pi))
    for h, level in zip(MAINS_HARMONICS, levels):
        f = h * mains_hz
        if f >= 0.45 * rate_hz:
            break
        phase = rng.uniform(0, 2 * np.pi) + rng.normal(0.0, 0.3, len(FRIDLUND22))
        amp = np.sqrt(2) * subject.mains_uv * level * subject.mains_channel
        s, c = np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)
        out += (amp * np.cos(phase))[:, None] * s + (amp * np.sin(phase))[:, None] * c
    return out * drift


def _wander(subject: SignalSubject, rng: np.random.Generator, n_samples: int, rate_hz: float) -> np.ndarray:
    """Slow baseline drift (22, n): four sinusoids of 0.05-0.5 Hz per channel, made at 50 Hz and interpolated."""
    coarse_hz = 50.0
    t = np.arange(int(n_samples / rate_hz * coarse_hz) + 2) / coarse_hz
    freqs = rng.uniform(0.05, 0.5, (4, len(FRIDLUND22)))
    phases = rng.uniform(0, 2 * np.pi, (4, len(FRIDLUND22)))
    coarse = np.sin(2 * np.pi * freqs[:, None, :] * t[None, :, None] + phases[:, None, :]).sum(axis=0)
    return frames_to_samples(coarse, coarse_hz, n_samples, rate_hz) * (subject.wander_uv / np.sqrt(2.0))[:, None]


def muscle_signals(activations: np.ndarray, fps: float, subject: SignalSubject, rng: np.random.Generator,
                   n_samples: int, rate_hz: float) -> np.ndarray:
    """Source signals (sources, n) at gain 1: rest · (1 + (R - 1) a(t)) · slow tonic wobble · carrier."""
    freqs = np.fft.rfftfreq(n_samples, 1.0 / rate_hz)
    psds = np.stack([carrier_psd(freqs, muscle, subject.peak_hz[2 * i + s])
                     for i, muscle in enumerate(MUSCLES) for s in range(2)])
    psds *= (freqs < 0.45 * rate_hz)
    carriers = shaped_noise(rng, psds, n_samples)
    t = np.arange(activations.shape[0]) / fps
    wobble = 1.0 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.03, 0.2, len(SOURCE_NAMES)) * t[:, None]
                                 + rng.uniform(0, 2 * np.pi, len(SOURCE_NAMES)))
    amplitude = subject.rest_uv * (1.0 + (subject.ratio - 1.0) * activations) * wobble  # (frames, sources)
    amplitude = frames_to_samples(amplitude, fps, n_samples, rate_hz)
    return amplitude * carriers


def synthesize(activations: np.ndarray, fps: float, subject: SignalSubject, rate_hz: float,
               duration_s: float, rng: np.random.Generator, gain: float, mains_hz: float = 50.0,
               motion: list[dict] | None = None, clean: bool = False) -> np.ndarray:
    """The 22 Fridlund channels (22, n) in µV from activations (frames, sources)."""
    n_samples = int(round(duration_s * rate_hz))
    noise_rng = np.random.default_rng(rng.integers(2 ** 63))  # the muscle part is the same when clean
    sources = muscle_signals(activations, fps, subject, rng, n_samples, rate_hz)
    data = gain * (subject.mixing() @ sources)
    if not clean:
        data += subject.noise_uv[:, None] * noise_rng.standard_normal(data.shape)
        data += mains(subject, noise_rng, n_samples, rate_hz, mains_hz)
        data += _wander(subject, noise_rng, n_samples, rate_hz)
        if motion:
            data += _motion(motion, noise_rng, n_samples, rate_hz)
    return data
