"""The settings of EIFER's processing chain, with EIFER's values as defaults."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import InputError
from ..recording.montage import MONTAGES

EIFER_TAPS_AT_4096 = 129  # FIR length of the EIFER / MMM chain at its 4096 Hz rate
NORMALISATION_METHODS = ("none", "rest", "calibration", "percentile")
NAN_POLICIES = ("raise", "zero", "interpolate")


@dataclass(frozen=True)
class ProcessingSettings:
    """Parameters of the chain; the defaults are EIFER's, plus mains harmonics found automatically.

    :meth:`eifer` gives EIFER's chain exactly (the MMM release; what the shipped models were
    trained on): a 50 Hz notch only. The default adds what real lab recordings need, whose mains
    hum comes with harmonics and can exceed the resting EMG: the mains frequency is found in the
    spectrum and its harmonics up to the band's upper edge get narrow notches.

    Parameters
    ----------
    remove_mean : bool
        Subtract each channel's mean over the whole recording first.
    notch_hz : tuple of float, or "auto"
        Power-line frequencies to notch (``()`` for none; ``(60.0,)`` in the Americas); "auto"
        finds 50 or 60 Hz from the recording's spectrum.
    notch_harmonics : bool
        Also notch the harmonics, up to the band's upper edge (or Nyquist without a band).
    notch_q : float
        Quality factor of the fundamental's IIR notch (EIFER: 2, i.e. 25 Hz wide at 50 Hz).
    harmonic_q : float
        Quality factor of the harmonics' notches per harmonic number: the k-th harmonic's notch
        has Q = k · harmonic_q, so each is mains / harmonic_q wide (1.7 Hz at 50 Hz, 30).
    drift_highpass_hz : float or None
        Corner of a 2nd-order Butterworth high-pass (zero phase) before the band-pass: removes
        electrode drift and movement baseline that the short FIR's 10 Hz edge lets through
        (an 0.2 Hz drift of 6 µV leaves ~3 µV of envelope, as much as resting EMG). None: off
        (EIFER's chain).
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
        Resolve channel names onto a montage (aliases, monopolar pairs, muscle words); None keeps
        file names.
    channel_map : tuple of (channel, site), optional
        The user's map: a file channel (label, or 1-based column of a headerless file) and the
        montage site it records (``"none"`` leaves it out); wins over every guess.
    side : {"left", "right"}, optional
        Side of channels whose labels name a muscle but no side (``"EMG_zyg"``).
    mirror : bool
        Copy each one-sided site to the other side (``Zyg_L`` also feeds ``Zyg_R``); never done
        silently.
    channels : tuple of str, optional
        Output only these channels, in this order (canonical or file names); missing -> error.
    nan_policy : {"raise", "zero", "interpolate"}
        NaN/Inf samples (missing cells) raise an error, become 0 after mean removal (the MMM
        practice), or are interpolated linearly across gaps up to ``max_gap_s``.
    max_gap_s : float
        Longest gap "interpolate" bridges; longer ones are refused with their times.
    chunk_s : float or None
        Seconds of output per chunk; None processes the whole array at once.
    causal : bool
        Make each envelope from the samples up to its frame only (:mod:`.streaming`, the chain a
        live stream runs): forward-only filters, a trailing RMS window, no mean removal; missing
        samples hold the last one unless "interpolate" bridged them first. The causal models'
        chain (trained on it); False is EIFER's zero-phase, centred chain. Files that already hold
        envelopes are resampled as they are, whichever chain.
    """

    remove_mean: bool = True
    notch_hz: tuple[float, ...] | str = "auto"
    notch_harmonics: bool = True
    notch_q: float = 2.0
    harmonic_q: float = 30.0
    drift_highpass_hz: float | None = 10.0
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
    channel_map: tuple[tuple[str, str], ...] | None = None
    side: str | None = None
    mirror: bool = False
    channels: tuple[str, ...] | None = None
    nan_policy: str = "raise"
    max_gap_s: float = 0.5
    chunk_s: float | None = 60.0
    causal: bool = False

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
        if isinstance(self.notch_hz, str):
            if self.notch_hz != "auto":
                problems.append(f"notch_hz must be 'auto' or frequencies, not {self.notch_hz!r}")
        elif any(not f > 0 for f in self.notch_hz):
            problems.append(f"notch frequencies must be positive, got {self.notch_hz}")
        if self.drift_highpass_hz is not None and not self.drift_highpass_hz > 0:
            problems.append(f"drift_highpass_hz must be positive or None, got {self.drift_highpass_hz}")
        if not (self.notch_q > 0 and self.harmonic_q > 0):
            problems.append(f"notch_q and harmonic_q must be positive, got {self.notch_q}, {self.harmonic_q}")
        if not 0 < self.nyquist_fraction < 1:
            problems.append(f"nyquist_fraction must lie in (0, 1), got {self.nyquist_fraction}")
        if isinstance(self.band_taps, str) and self.band_taps not in ("eifer", "mne"):
            problems.append(f"band_taps must be 'eifer', 'mne' or an odd number, not {self.band_taps!r}")
        if isinstance(self.band_taps, int) and (self.band_taps < 3 or self.band_taps % 2 == 0):
            problems.append(f"band_taps must be odd and >= 3, got {self.band_taps}")
        if self.nan_policy not in NAN_POLICIES:
            problems.append(f"nan_policy must be one of {', '.join(NAN_POLICIES)}, not {self.nan_policy!r}")
        if not self.max_gap_s > 0:
            problems.append(f"max_gap_s must be positive, got {self.max_gap_s}")
        if self.side not in (None, "left", "right"):
            problems.append(f"side must be 'left' or 'right', not {self.side!r}")
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

    @classmethod
    def eifer(cls, **overrides) -> "ProcessingSettings":
        """EIFER's chain as the MMM release ran it: a 50 Hz notch (Q = 2) and nothing more."""
        return cls(**{"notch_hz": (50.0,), "notch_harmonics": False, "drift_highpass_hz": None, **overrides})

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
            if key in tuples and value is not None and not isinstance(value, str):
                value = tuple(value)
            elif key in ("rest_s", "calibration_s", "channel_map") and value is not None:
                value = tuple(tuple(span) for span in value)
            fixed[key] = value
        return cls(**fixed)


# ----------------------------------------------------------------------------------------------
# The steps, one function each
