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


def run(args: argparse.Namespace) -> int:
    from ..core.analysis.compare import compare_tracks, write_metrics_csv
    from ..core.analysis.metrics import METRIC_NAMES
    from ..core.trackfiles import read_track

    recorded, inferred = read_track(args.recorded), read_track(args.inferred)
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
        from ..core.analysis.plots import plot_comparison

        print(f"wrote {plot_comparison(result.recorded, result.inferred, args.png)}")
    return 0
