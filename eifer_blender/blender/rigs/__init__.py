"""Rigs: one interface over every face the add-on drives or reads — bind, key a track, sample a track.

:func:`rig_for` gives an :class:`~.arkit.ArkitRig` for a mesh with ARKit-named shape keys, or a
:class:`~.flame_keys.FlameHeadRig` for a FLAME head built by EIFER (:mod:`.flame`,
:mod:`.flame_build`, :mod:`.flame_keys`); :mod:`.openhead` builds the CC0 open head. Callers never
ask which one they hold: both have ``space``, ``face``, ``bind(names)``, ``key(track, ...)`` and
``sample(frames, scene)``.
"""
from __future__ import annotations

from ...core.errors import InputError
from .arkit import ArkitRig
from .flame import find_flame_rig, is_flame_rig
from .flame_keys import FlameHeadRig


def rig_for(face, *, swap_sides: bool = False, mapping: dict[str, str] | None = None):
    """The rig of ``face``: a FLAME head (its mesh or armature) or a mesh with ARKit shape keys.

    Raises
    ------
    InputError
        No face, or an object that is neither (the message says what a face needs).
    """
    if face is None:
        raise InputError("no face given: add the open head or pick a mesh with ARKit shape keys")
    if is_flame_rig(face):
        return FlameHeadRig(find_flame_rig(face))
    return ArkitRig(face, swap_sides=swap_sides, mapping=mapping)


__all__ = ["rig_for", "ArkitRig", "FlameHeadRig"]
