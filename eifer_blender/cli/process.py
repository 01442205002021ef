"""``eifer process``: raw sEMG file -> muscle-activity envelopes at a frame rate (CSV or EDF)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "turn an sEMG recording into muscle-activity envelopes at a frame rate (EIFER's chain)"


def _span(text: str) -> tuple[float, float]:
    try:
        start, stop = (float(v) for v in text.replace(",", ":").split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP in seconds, got {text!r}")
    if not stop > start:
        raise argparse.ArgumentTypeError(f"STOP must be after START in {text!r}")
    return start, stop


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ._args import add_csv_arguments, add_recording_arguments

    parser.add_argument("--emg", required=True, metavar="FILE",
                        help="recording: .edf .bdf .gdf .vhdr .set .fif .cnt .xdf or .csv")
    parser.add_argument("--fps", type=float, required=True, help="output frame rate")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="envelopes to write: .csv (frames x channels), .edf or .bdf")
    parser.add_argument("--start", type=float, default=0.0, metavar="S",
                        help="recording time of frame 0 in seconds (default: 0)")
    parser.add_argument("--frames", type=int, default=None, metavar="N",
                        help="number of frames (default: all that fit)")
    add_csv_arguments(parser)
    parser.add_argument("--montage", choices=("auto", "fridlund22", "kuramoto19", "none"),
                        default="auto", help="resolve channel names onto a montage (default: auto)")
    parser.add_argument("--channels", nargs="+", default=None, metavar="NAME",
                        help="output only these channels, in this order")
    parser.add_argument("--notch", choices=("auto", "50", "60", "off"), default="auto",
                        help="power-line notch: auto (default) finds 50 or 60 Hz in the spectrum")
    parser.add_argument("--no-harmonics", action="store_true",
                        help="notch only the mains frequency, not its harmonics (EIFER's own chain)")
    parser.add_argument("--notch-q", type=float, default=2.0,
                        help="quality factor of the mains notch (default: 2, EIFER's)")
    parser.add_argument("--band", nargs=2, type=float, default=[10.0, 500.0], metavar=("LOW", "HIGH"),
                        help="band-pass edges in Hz (default: 10 500)")
    parser.add_argument("--no-band", action="store_true", help="skip the band-pass")
    parser.add_argument("--taps", default="eifer",
                        help="band-pass length: eifer (129 at 4096 Hz), mne, or an odd number")
    parser.add_argument("--envelope", choices=("rms", "rectify"), default="rms",
                        help="amplitude estimator (default: rms)")
    parser.add_argument("--window", type=float, default=0.5, metavar="S",
                        help="RMS window in seconds (default: 0.5)")
    parser.add_argument("--lowpass", type=float, default=6.0, metavar="HZ",
                        help="low-pass of the rectified signal (default: 6)")
    parser.add_argument("--normalise", choices=("none", "rest", "calibration", "percentile"),
                        default="none", help="per-channel normalisation (default: none)")
    parser.add_argument("--rest", type=_span, action="append", metavar="START:STOP",
                        help="rest span in seconds (repeatable; default: 'rest' annotations)")
    parser.add_argument("--calibration", type=_span, action="append", metavar="START:STOP",
                        help="calibration span (repeatable; default: 'calibration' annotations)")
    add_recording_arguments(parser)
    parser.add_argument("--chunk", type=float, default=60.0, metavar="S",
                        help="seconds processed at a time (bounds memory; default: 60)")


def run(args: argparse.Namespace) -> int:
    from ..core.envelopes import ProcessingSettings, process_source
    from ..core.errors import InputError
    from ..core.recording import open_recording
    from ..core.trackfiles import TRACK_FORMATS, write_track
    from ._args import notch_setting, print_track_report, recording_options

    if Path(args.out).suffix.lower() not in TRACK_FORMATS:
        raise InputError(f"{args.out}: envelopes can be written as {', '.join(TRACK_FORMATS)}")
    taps: int | str = args.taps
    if taps not in ("eifer", "mne"):
        try:
            taps = int(taps)
        except ValueError:
            raise InputError(f"--taps must be eifer, mne or an odd number, not {args.taps!r}")
    options = recording_options(args)
    units = options.pop("units")
    settings = ProcessingSettings(
        notch_hz=notch_setting(args.notch), notch_harmonics=not args.no_harmonics, notch_q=args.notch_q,
        band_hz=None if args.no_band else tuple(args.band), band_taps=taps,
        envelope=args.envelope, rms_window_s=args.window, rectify_lowpass_hz=args.lowpass,
        normalise=args.normalise, rest_s=tuple(args.rest) if args.rest else None,
        calibration_s=tuple(args.calibration) if args.calibration else None,
        montage=None if args.montage == "none" else args.montage,
        channels=tuple(args.channels) if args.channels else None, chunk_s=args.chunk, **options)
    started = time.perf_counter()
    source = open_recording(args.emg, rate_hz=args.rate, csv_kind=args.csv_kind, units=units)
    track = process_source(source, args.fps, settings, start_s=args.start, n_frames=args.frames)
    path = write_track(track, args.out)
    print(f"{path}: {track.n_frames} frames x {len(track.names)} channels at {track.fps:g} fps "
          f"({track.space}, {track.units}) from {source.n_channels} channels, "
          f"{source.duration_s:.1f} s at {source.rate_hz:g} Hz, in {time.perf_counter() - started:.1f} s")
    print_track_report(track)
    return 0
