"""``eifer stream``: replay a recording as a live LSL stream (demos, tests, users without hardware)."""
from __future__ import annotations

import argparse

HELP = "replay an sEMG recording as a Lab Streaming Layer (LSL) stream at its own rate, one channel per site"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ._args import add_csv_arguments, add_recording_arguments

    parser.add_argument("--emg", required=True, metavar="FILE",
                        help="recording: .edf .bdf .gdf .vhdr .set .fif .cnt .xdf or .csv")
    parser.add_argument("--name", default=None, metavar="NAME",
                        help="LSL stream name (default: 'EIFER <file stem>'); its type is EMG")
    parser.add_argument("--chunk-ms", type=float, default=10.0, metavar="MS",
                        help="milliseconds of samples per push (default: 10)")
    parser.add_argument("--loop", action="store_true", help="start again at the end, until interrupted")
    parser.add_argument("--wait", type=float, default=0.0, metavar="S",
                        help="wait up to S seconds for a receiver (Go Live) before the first sample, so it "
                             "gets the recording from its start (default: 0, stream at once)")
    add_csv_arguments(parser, kind=False)
    add_recording_arguments(parser, nan=False)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..core.envelopes import ProcessingSettings
    from ..core.live import import_pylsl, make_outlet, replay, site_recording
    from ..core.recording import open_recording
    from ._args import recording_options, require_number

    require_number("--chunk-ms", args.chunk_ms, above=0)
    require_number("--wait", args.wait, minimum=0)
    import_pylsl()  # a clear message before the file is read
    options = recording_options(args)
    source = open_recording(args.emg, rate_hz=args.rate, units=options.pop("units"))
    options.pop("nan_policy")
    recording = site_recording(source, ProcessingSettings(notch_hz=(50.0,), **options))
    name = args.name or f"EIFER {Path(args.emg).stem}"
    outlet = make_outlet(name, recording.channel_names, recording.rate_hz)
    print(f"streaming {name!r} (type EMG): {recording.n_channels} channels ({', '.join(recording.channel_names)}) "
          f"at {recording.rate_hz:g} Hz, {recording.duration_s:.1f} s{', looped' if args.loop else ''}; "
          f"Ctrl+C stops", flush=True)
    if args.wait > 0 and not outlet.wait_for_consumers(args.wait):
        print(f"no receiver within {args.wait:g} s: streaming anyway", flush=True)
    sent = replay(outlet, recording.data_uv, recording.rate_hz, chunk_ms=args.chunk_ms, loop=args.loop)
    print(f"sent {sent} samples ({sent / recording.rate_hz:.1f} s)")
    return 0
