"""The batch's summary: one row per item (status, error, seconds per job, key metrics), as CSV and HTML."""
from __future__ import annotations

import csv
import html
import io
from pathlib import Path

from ..atomic import atomic_file
from .jobs import ItemResult

METRIC_COLUMNS = ("frames_keyed", "median_spearman")


def summary_rows(results: list[ItemResult], jobs) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the summary table, items in name order."""
    header = ["item", "status", "error", "attempts", *(f"{job}_s" for job in jobs), "total_s",
              *METRIC_COLUMNS, "recording", "out_dir"]
    rows = []
    for r in sorted(results, key=lambda r: r.name):
        times = [r.timings_s.get(job) for job in jobs]
        total = sum(t for t in times if t is not None)
        metrics = [r.metrics.get(m) for m in METRIC_COLUMNS]
        rows.append([r.name, r.status, r.error, str(r.attempts),
                     *("" if t is None else f"{t:.2f}" for t in times), f"{total:.2f}",
                     *("" if m is None else (f"{m:.4f}" if isinstance(m, float) else str(m)) for m in metrics),
                     r.recording, r.out_dir])
    return header, rows


def _html(header, rows, title: str) -> str:
    colours = {"done": "#d8f0d8", "skipped": "#e8e8e8", "failed": "#f6d0d0"}
    counts = {s: sum(row[1] == s for row in rows) for s in ("done", "skipped", "failed")}
    out = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
           "td,th{border:1px solid #bbb;padding:2px 6px;font-size:13px}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>",
           f"<p>{len(rows)} items: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + "</p>",
           "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        out.append(f"<tr style='background:{colours.get(row[1], '#fff')}'>"
                   + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>")
    out.append("</table></body></html>\n")
    return "\n".join(out)


def write_summary(results: list[ItemResult], jobs, out: str | Path) -> tuple[Path, Path]:
    """Write ``summary.csv`` and ``summary.html`` into ``out`` (each whole or not at all)."""
    out = Path(out)
    header, rows = summary_rows(results, jobs)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    paths = out / "summary.csv", out / "summary.html"
    with atomic_file(paths[0]) as temporary:
        temporary.write_text(buffer.getvalue())
    with atomic_file(paths[1]) as temporary:
        temporary.write_text(_html(header, rows, f"EIFER batch: {out}"))
    return paths
