# SPDX-License-Identifier: GPL-3.0-or-later
"""EIFER for Blender: drive faces from facial sEMG and infer muscle activity from faces.

This package is both the Blender extension (``register``/``unregister``) and a plain Python
package (``python -m eifer_blender``, ``eifer_blender.core``). Nothing here imports ``bpy`` at
import time, so the bpy-free core works without Blender.
"""


def register():
    from .blender import registration

    registration.register()


def unregister():
    from .blender import registration

    registration.unregister()
