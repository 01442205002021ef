"""Headless command line: ``python -m eifer_blender <command>`` and ``blender -b --command eifer <command>``.

Each subcommand is a module in this package with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Exit codes: 0 ok, 2 usage error, 3 input error.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import sys

from ..core.errors import EiferError

EXIT_OK, EXIT_USAGE, EXIT_INPUT, EXIT_INTERRUPTED = 0, 2, 3, 130  # 130: 128 + SIGINT, as shells report

# command name -> module in this package; modules load lazily so `--help` stays fast
COMMANDS: dict[str, str] = {
    "demo": "demo",
    "simulate": "simulate",
    "flame-import": "flame_import",
    "flame-bridge": "flame_bridge",
    "process": "process",
    "drive": "drive",
    "infer-muscles": "infer_muscles",
    "compare": "compare",
    "render": "render",
    "batch": "batch",
    "stream": "stream",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eifer", description="EIFER for Blender, headless.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


@contextlib.contextmanager
def _fewer_collections(first_generation: int = 1_000_000):
    """Run a command with the cyclic garbage collector's first threshold raised (default 700).

    A command's first work is importing bpy, SciPy, MNE (and matplotlib through it) and ONNX
    Runtime: hundreds of thousands of long-lived objects, which the default thresholds traverse
    again and again while freeing almost nothing (a cold ``drive`` of the bundled example: 405
    collections, 0.30 s, counted with ``gc.callbacks``). Reference counting frees everything else as
    before. Afterwards what the command made joins the oldest generation (``freeze`` + ``unfreeze``),
    so putting the threshold back does not set off a collection of all of it at once; not when the
    caller holds objects frozen itself (``unfreeze`` would release those too).
    """
    before = gc.get_threshold()
    gc.set_threshold(first_generation, *before[1:])
    try:
        yield
    finally:
        if not gc.get_freeze_count():
            gc.freeze()
            gc.unfreeze()
        gc.set_threshold(*before)


def main(argv: list[str] | None = None) -> int:
    with _fewer_collections():
        return _run_command(argv)


def _run_command(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args._run(args) or EXIT_OK)
    except EiferError as exc:
        print(f"eifer {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:  # a full disk, a folder without write permission: the user's to fix
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"eifer {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:  # outputs are written whole or not at all: nothing partial is left
        print(f"eifer {args.command}: interrupted; no output was left half-written", file=sys.stderr)
        return EXIT_INTERRUPTED
