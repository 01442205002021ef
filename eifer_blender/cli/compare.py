"""``eifer compare``: recorded vs inferred muscle curves -> EIFER's metrics per channel (CSV) and a plot."""
from __future__ import annotations

import argparse

HELP = "score inferred muscle curves against recorded ones (MSE, RMSE, SMAPE, Spearman rho per channel)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recorded", required=True, metavar="FILE",
                        help="recorded envelopes: .csv (eifer process) or .edf/.bdf")
    parser.add_argument("--inferred", required=True, metavar="FILE",
                        help="inferred curves: .csv or .edf/.bdf (eifer infer-muscles)")
    parser.add_argument("--csv", metavar="FILE", help="write the per-channel metrics here")
    parser.add_argument("--png", metavar="FILE", help="write a recorded-vs-inferred plot here")
    parser.add_argument("--scaling", choices=("auto", "none", "percentile"), default="auto",
                        help="put both on one scale first (default auto: percentile when the units differ)")


def _read(path: str):
    from pathlib import Path

    from ..core.bids import read_track_edf
    from ..core.errors import InputError
    from ..core.recording import read_envelopes

    suffix = Path(path).suffix.lower()
    if not Path(path).is_file():
        raise InputError(f"{path}: file not found")
    if suffix in (".edf", ".bdf"):
        return read_track_edf(path)
    if suffix == ".csv":
        return read_envelopes(path)
    raise InputError(f"{path}: expected .csv, .edf or .bdf")


def run(args: argparse.Namespace) -> int:
    from ..core.compare import compare_tracks, write_metrics_csv
    from ..core.metrics import METRIC_NAMES

    recorded, inferred = _read(args.recorded), _read(args.inferred)
    result = compare_tracks(recorded, inferred, scaling=args.scaling)
    print(f"{len(result.names)} channels, {result.recorded.n_frames} frames at {result.recorded.fps:g} fps, "
          f"scaling {result.scaling}")
    print("channel".ljust(12) + "".join(m.rjust(10) for m in METRIC_NAMES))
    for name in result.names:
        row = result.table.row(name)
        print(name.ljust(12) + "".join(f"{row[m]:10.4g}" for m in METRIC_NAMES))
    summary = result.summary()
    print("median".ljust(12) + "".join(f"{summary[m]:10.4g}" for m in METRIC_NAMES))
    if args.csv:
        print(f"wrote {write_metrics_csv(result, args.csv, recorded_label=args.recorded, inferred_label=args.inferred)}")
    if args.png:
        from ..core.plots import plot_comparison

        print(f"wrote {plot_comparison(result.recorded, result.inferred, args.png)}")
    return 0
