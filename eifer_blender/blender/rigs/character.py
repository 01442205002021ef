"""A character, not a mesh: every mesh of one avatar that carries ARKit shape keys, behind the rig
interface (bind, key a track, sample a track).

Avatars split their face over meshes (Ready Player Me: head, teeth, left eye, right eye; Character
Creator, MetaHuman-style and Faceit rigs likewise): choosing any of them binds all the meshes of the
character — those deformed by or parented to the same armature, else under the same parent, else in
the same collection — whose shape keys match ARKit names. Keying writes one action per mesh's shape
keys (the fast path of :mod:`.arkit`), so the teeth follow jawOpen with the head; sampling reads the
head (the mesh with the most matched shapes), and a shape only another mesh carries from that mesh.
An optional bone mapping (:mod:`.bones`) turns jaw and eye bones too.
"""
from __future__ import annotations

import bpy
import numpy as np

from ...core.errors import InputError
from ...core.expression.spaces import ARKIT52
from ...core.tracks import ExpressionTrack
from ..anim.keyframes import scene_fps
from .arkit import ArkitRig, MeshBinding, arkit_binding, sample_shape_keys
from .bones import armature_of, bone_maps, bones_on_rig, key_bones


def _is_scene_root(collection) -> bool:
    return any(collection == scene.collection for scene in bpy.data.scenes)


def character_members(face) -> list:
    """The objects of ``face``'s character, ``face`` first: the meshes its armature deforms or
    carries, else the meshes under its topmost parent, else the meshes of its own collections
    (not a scene's top collection, where unrelated objects live). Just ``[face]`` when it stands
    alone."""
    armature = armature_of(face)
    if armature is not None:
        members = [o for o in bpy.data.objects if o.type == "MESH" and armature_of(o) == armature]
    elif face.type == "MESH" and face.parent is not None:
        root = face.parent
        while root.parent is not None:
            root = root.parent
        members = [o for o in root.children_recursive if o.type == "MESH"]
    elif face.type == "MESH":
        collections = [c for c in face.users_collection if not _is_scene_root(c)]
        members = [o for c in collections for o in c.all_objects if o.type == "MESH"]
    else:
        members = []
    rest = sorted({o.name: o for o in members if o != face}.values(), key=lambda o: o.name)
    return [face, *rest] if face.type == "MESH" else rest


def _has_shape_keys(obj) -> bool:
    return obj.type == "MESH" and obj.data.shape_keys is not None and len(obj.data.shape_keys.key_blocks) > 1


def arkit_rig_for(face, *, swap_sides: bool = False, mapping: dict[str, str] | None = None,
                  bones: dict | None = None):
    """An :class:`ArkitRig` for a mesh that stands alone, a :class:`CharacterRig` when ``face``
    (a mesh or the armature) belongs to a character of several meshes with ARKit shape keys, or when
    ``bones`` maps jaw or eye bones (None: the mapping stored on the armature, if any; ``{}``: none)."""
    if bones is None:
        bones = bones_on_rig(face)
    parts = []
    for obj in character_members(face):
        if _has_shape_keys(obj) and arkit_binding(obj, swap_sides=swap_sides, overrides=mapping):
            parts.append(ArkitRig(obj, swap_sides=swap_sides, mapping=mapping))
    if not bones and (not parts or (len(parts) == 1 and parts[0].face == face)):
        return ArkitRig(face, swap_sides=swap_sides, mapping=mapping)  # its errors say what a face needs
    return CharacterRig(face, parts, bones=bones)


class CharacterRig:
    """The ARKit meshes of one character (``parts``, one :class:`ArkitRig` each) as one rig.

    ``face`` is the head: the part with the most matched shapes (on a tie, the chosen mesh), which
    Infer reads; ``chosen`` the object the user picked; ``binding`` ARKit name -> shape key on the
    mesh a sample reads it from (``sources``); ``bones`` the checked bone mapping (may be empty).
    """

    space = "arkit52"

    def __init__(self, chosen, parts: list[ArkitRig], *, bones: dict | None = None):
        self.chosen = chosen
        self.armature = armature_of(chosen) or next((a for a in map(armature_of, (p.face for p in parts)) if a), None)
        self.bones = bone_maps(bones or {}, self.armature)
        if not parts and not self.bones:
            raise InputError(f"{chosen.name}: no mesh of this character has shape keys with ARKit names")
        order = sorted(range(len(parts)), key=lambda i: (-len(parts[i].binding), i))
        self.parts = [parts[i] for i in order]
        self.face = self.parts[0].face if self.parts else chosen
        self.sources: dict[str, ArkitRig] = {}
        for name in ARKIT52:
            source = next((p for p in self.parts if name in p.binding), None)
            if source is not None:
                self.sources[name] = source
        self.binding = {name: part.binding[name] for name, part in self.sources.items()}
        self.actions: dict[str, bpy.types.Action] = {}

    @property
    def animated_ids(self) -> list:
        ids = [i for part in self.parts for i in part.animated_ids]
        return ids + ([self.armature] if self.bones else [])

    @property
    def meshes(self) -> list[MeshBinding]:
        """Each mesh of the character with its matched and unmatched shapes (head first)."""
        return [m for part in self.parts for m in part.meshes]

    def bind(self, names) -> list[str]:
        """Check that some of ``names`` have a shape key on some mesh (or a mapped bone); returns
        those that have neither."""
        names = list(names)
        bound = {*self.binding, *(m.arkit for m in self.bones)}
        if not any(n in bound for n in names):
            meshes = ", ".join(p.face.name for p in self.parts) or self.chosen.name
            wanted = ", ".join(names[:8]) + (" …" if len(names) > 8 else "")
            raise InputError(f"no mesh of {self.chosen.name}'s character ({meshes}) has shape keys with ARKit "
                             f"names (looked for {wanted})")
        return [n for n in names if n not in bound]

    def key(self, track: ExpressionTrack, *, start_frame: int, action_name: str, keep=None):
        """Key ``track`` on every mesh that binds some of its names, one action per mesh (the head's
        named ``action_name``, the others' after their mesh; previous actions are stashed), and on the
        mapped bones; returns the head's action (the first one written when the head binds none)."""
        self.actions = {}
        for part in self.parts:
            if any(n in part.binding for n in track.names):
                name = action_name if part is self.parts[0] else f"{action_name} ({part.face.name})"
                self.actions[part.face.name] = part.key(track, start_frame=start_frame, action_name=name, keep=keep)
        if self.bones:
            action = key_bones(self.armature, track, self.bones, start_frame=start_frame,
                               action_name=f"{action_name} (bones)")
            if action is not None:
                self.actions[self.armature.name] = action
        return next(iter(self.actions.values()), None)

    def sample(self, frames, scene=None) -> ExpressionTrack:
        """The bound shapes at ``frames`` as an ``arkit52`` track, each read from its source mesh (the
        head wherever it carries the shape)."""
        scene = scene or bpy.context.scene
        frames = np.asarray(frames, dtype=np.int64)
        names = [n for n in ARKIT52 if n in self.sources]
        values = np.zeros((frames.size, len(names)))
        for part in self.parts:
            own = {n: part.binding[n] for n in names if self.sources[n] is part}
            if own:
                sampled = sample_shape_keys(part.face, own, frames, scene)
                for n in sampled.names:
                    values[:, names.index(n)] = sampled.column(n)
        return ExpressionTrack(values, names, fps=scene_fps(scene), space="arkit52", units="1")


__all__ = ["CharacterRig", "arkit_rig_for", "character_members"]
