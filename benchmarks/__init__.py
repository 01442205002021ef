"""Benchmarks (not tests): each ``bench_*.py`` module exposes ``rows() -> list[dict]``.

A row has: measure, value, unit, baseline (measured in the same run), ratio, note.
Run all with ``make bench`` or ``python -m benchmarks [name ...]``.
"""
