"""``eifer simulate``: make a synthetic sEMG recording with known ground truth."""
from __future__ import annotations

import argparse

HELP = "simulate a facial sEMG recording (Fridlund-22) with its ground-truth face and muscle activity"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..core.simulator import PROTOCOLS

    parser.add_argument("--protocol", choices=PROTOCOLS, default="emotions",
                        help="what the simulated person does (default: emotions)")
    parser.add_argument("--subject", type=int, default=1, metavar="N",
                        help="simulated person, any whole number ≥ 0 (default: 1)")
    parser.add_argument("--duration", type=float, default=60.0, metavar="S",
                        help="length in seconds (default: 60)")
    parser.add_argument("--rate", type=float, default=4096.0, metavar="HZ",
                        help="sEMG sampling rate in Hz, ≥ 1000 (default: 4096)")
    parser.add_argument("--fps", type=float, default=60.0,
                        help="frame rate of the ground-truth face and activations (default: 60)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed; the same seed gives the same recording (default: 0)")
    parser.add_argument("--mains", type=float, choices=(50.0, 60.0), default=50.0,
                        help="power-line frequency of the hum in Hz (default: 50)")
    parser.add_argument("--montage", default="fridlund22", help="electrode montage (default: fridlund22)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="recording to write: .edf, .bdf, .csv, .fif, .vhdr, .set or .xdf; "
                             "the ground truth goes next to it as <stem>_truth.npz and <stem>_events.tsv")


def run(args: argparse.Namespace) -> int:
    from ..core.errors import InputError
    from ..core.recording import file_format
    from ..core.simulator.session import simulate_session, write_session
    from ..core.simulator.synthesis import make_subject

    file_format(args.out, for_writing=True)  # refuse an unknown file type before the work
    if args.duration <= 0:
        raise InputError(f"--duration must be positive, got {args.duration}")
    subject = make_subject(args.subject, mains_hz=args.mains)
    session = simulate_session(args.protocol, subject, args.duration, rate_hz=args.rate,
                               fps=args.fps, montage=args.montage, seed=args.seed)
    paths = write_session(session, args.out)
    rec = session.recording
    print(f"wrote {paths['recording']}: {rec.n_channels} channels, {rec.duration_s:.1f} s at "
          f"{rec.rate_hz:g} Hz ({args.protocol}, subject {args.subject}, seed {args.seed})")
    print(f"ground truth: {paths['truth']} ({session.arkit.n_frames} frames at {args.fps:g} fps), "
          f"events: {paths['events']} ({len(session.annotations)} events)")
    return 0
