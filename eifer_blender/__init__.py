# SPDX-License-Identifier: GPL-3.0-or-later
"""EIFER for Blender: drive faces from facial sEMG and infer muscle activity from faces.

This package is both the Blender extension (``register``/``unregister``) and a plain Python
package (``python -m eifer_blender``, ``eifer_blender.core``). Nothing here imports ``bpy`` at
import time, so the bpy-free core works without Blender.

Layout, by stage of the data path: ``core/`` (no bpy) — ``recording`` → ``envelopes`` →
``network`` → ``expression`` → ``heads`` → ``trackfiles`` → ``pipeline`` → ``analysis``,
``simulator``; ``blender/`` — ``anim`` → ``rigs`` → ``jobs`` → ``ui``; ``cli/`` on top of both.
"""

_cli_handle = None


def _run_cli(argv):
    from .cli import main

    return main(argv)


def register():
    """Register the user interface and the ``blender --command eifer`` command line."""
    global _cli_handle
    import bpy

    from .blender import ui
    from .blender.anim import internal

    ui.register()
    internal.register_handlers()  # upgrade files saved by earlier versions on load; stamp on save
    if hasattr(bpy.utils, "register_cli_command"):  # Blender 4.2+
        _cli_handle = bpy.utils.register_cli_command("eifer", _run_cli)


def unregister():
    global _cli_handle
    import bpy

    from .blender import ui
    from .blender.anim import internal

    if _cli_handle is not None:
        bpy.utils.unregister_cli_command(_cli_handle)
        _cli_handle = None
    internal.unregister_handlers()
    ui.unregister()
