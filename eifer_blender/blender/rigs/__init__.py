"""Rigs: one interface over every face the add-on drives or reads — bind, key a track, sample a track.

:func:`rig_for` gives an :class:`~.arkit.ArkitRig` for a mesh with ARKit-named shape keys, a
:class:`~.character.CharacterRig` for a character whose face spans meshes (head, teeth, eyes; with
optional jaw and eye bones, :mod:`.bones`), or a :class:`~.flame_keys.FlameHeadRig` for a FLAME
head built by EIFER (:mod:`.flame`, :mod:`.flame_build`, :mod:`.flame_keys`); :mod:`.openhead`
builds the CC0 open head. Callers never ask which one they hold: all have ``space``, ``face``,
``bind(names)``, ``key(track, ...)`` and ``sample(frames, scene)``; the ARKit ones also ``meshes``
(each mesh with its matched and unmatched shapes).
"""
from __future__ import annotations

from ...core.errors import InputError
from .arkit import ArkitRig
from .character import CharacterRig, arkit_rig_for
from .flame import find_flame_rig, is_flame_rig
from .flame_keys import FlameHeadRig


def rig_for(face, *, swap_sides: bool = False, mapping: dict[str, str] | None = None, bones: dict | None = None):
    """The rig of ``face``: a FLAME head (its mesh or armature), or a mesh with ARKit shape keys —
    with every other mesh of its character that has some (see :mod:`.character`).

    ``bones`` maps ARKit names to jaw and eye bones, ``{"jawOpen": ("jaw", "X", 25.0)}`` (bone,
    local axis, degrees at weight 1; see :mod:`.bones`); None: the mapping saved on the armature
    (its ``eifer_bones`` property), if any; bones stay still unless mapped.

    Raises
    ------
    InputError
        No face, or an object that is neither (the message says what a face needs).
    """
    if face is None:
        raise InputError("no face given: add the open head or pick a mesh with ARKit shape keys")
    if is_flame_rig(face):
        if bones:
            raise InputError("a bone mapping is for ARKit characters; a FLAME head turns its own jaw and eyes")
        return FlameHeadRig(find_flame_rig(face))
    return arkit_rig_for(face, swap_sides=swap_sides, mapping=mapping, bones=bones)


__all__ = ["rig_for", "ArkitRig", "CharacterRig", "FlameHeadRig"]
