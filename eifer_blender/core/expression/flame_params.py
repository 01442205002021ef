"""Per-frame FLAME parameters: read and write the layouts face trackers produce.

Layouts
-------
``mmm``  (MMM / SMIRK / EIFER release, Zenodo 16636409): 361 columns per frame,
         shape 300 | expression 50 | eyelid 2 | jaw 3 | global pose 3 | cam 3. CSV or CSV.gz.
``emoca`` (EMOCA / DECA): 56 columns, expression 50 | pose 6 (global 3, jaw 3).
``npz``  named arrays (``expression``/``exp``, ``jaw_pose``, ``shape``, ``global_pose``, ``pose``
         (3, 6 or 15 wide), ``neck_pose``, ``eye_pose``, ``eyelid``, ``cam``, ``fps`` …); ``.npy``
         holds either one 2-D array in the ``mmm``/``emoca`` layout or a saved dict, which is
         read through the restricted unpickler (no code runs).

Reading gives a :class:`FlameParams` (frames × parameters per group, ``fps``); writing takes one
back to any layout. :meth:`FlameParams.to_expression_track` gives the ``flame`` space of the
networks (``spaces.FLAME_EXPRESSION_NAMES``: exp001…exp050, jaw, eyelids).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..tracks import ExpressionTrack
from .spaces import FLAME_EXP, FLAME_EXPRESSION_NAMES

DEFAULT_FPS = 30.0  # the MMM release: one parameter row per 30 Hz video frame
FLAME_JOINT_NAMES: tuple[str, ...] = ("root", "neck", "jaw", "eye_left", "eye_right")
FLAME_POSE_SIZE = 3 * len(FLAME_JOINT_NAMES)  # 15: five axis-angle rotations

# group name -> width; the order inside each layout is the column order
LAYOUTS: dict[str, tuple[tuple[str, int], ...]] = {
    "mmm": (("shape", 300), ("expression", 50), ("eyelid", 2), ("jaw_pose", 3),
            ("global_pose", 3), ("cam", 3)),
    "emoca": (("expression", 50), ("global_pose", 3), ("jaw_pose", 3)),
}
LAYOUT_COLUMNS = {name: sum(w for _, w in groups) for name, groups in LAYOUTS.items()}

_MAX_WIDTH = {"shape": 300, "expression": 100, "jaw_pose": 3, "global_pose": 3, "neck_pose": 3,
              "eye_pose": 6, "eyelid": 2, "cam": 3, "translation_m": 3}
_EXACT_WIDTH = {"jaw_pose", "global_pose", "neck_pose", "eye_pose", "eyelid", "cam",
                "translation_m"}

# npz/npy dict key -> group; first match wins
KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "expression": ("expression", "expression_params", "exp", "exp_params", "expr"),
    "shape": ("shape", "shape_params", "betas", "identity"),
    "jaw_pose": ("jaw_pose", "jaw", "jaw_params"),
    "global_pose": ("global_pose", "global_orient", "global_rotation", "rotation", "root_pose",
                    "head_pose"),
    "neck_pose": ("neck_pose", "neck"),
    "eye_pose": ("eye_pose", "eye_poses", "eyes", "eye_params"),
    "eyelid": ("eyelid", "eyelids", "eyelid_params"),
    "cam": ("cam", "camera", "cam_params"),
    "translation_m": ("translation_m", "translation", "transl", "trans"),
}
COMBINED_POSE_KEYS = ("pose", "pose_params", "full_pose")
FPS_KEYS = ("fps", "frame_rate", "framerate")


@dataclass
class FlameParams:
    """FLAME parameters per frame. Every array is ``(frames, width)`` float64; None = absent.

    Poses are axis-angle radians in FLAME's frame; ``eye_pose`` is ``[left 3 | right 3]``;
    ``eyelid`` is SMIRK's ``[left, right]`` eyelid-closure pair; ``cam`` SMIRK/DECA's
    orthographic ``[scale, tx, ty]``.
    """

    expression: np.ndarray  # (frames, ≤100)
    fps: float
    shape: np.ndarray | None = None  # (frames, ≤300)
    jaw_pose: np.ndarray | None = None  # (frames, 3)
    global_pose: np.ndarray | None = None  # (frames, 3)
    neck_pose: np.ndarray | None = None  # (frames, 3)
    eye_pose: np.ndarray | None = None  # (frames, 6)
    eyelid: np.ndarray | None = None  # (frames, 2)
    cam: np.ndarray | None = None  # (frames, 3)
    translation_m: np.ndarray | None = None  # (frames, 3)
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = self.source or "FLAME parameters"
        self.expression = _as_frames(self.expression, "expression", where, None)
        n_frames = self.expression.shape[0]
        for name in _MAX_WIDTH:
            if name != "expression" and getattr(self, name) is not None:
                setattr(self, name, _as_frames(getattr(self, name), name, where, n_frames))
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise InputError(f"{where}: fps must be a positive number, got {self.fps}.")
        self.fps = float(self.fps)

    @property
    def n_frames(self) -> int:
        return self.expression.shape[0]

    def groups(self) -> dict[str, np.ndarray]:
        """The present parameter groups by name."""
        return {name: getattr(self, name) for name in _MAX_WIDTH if getattr(self, name) is not None}

    def pose(self) -> np.ndarray:
        """FLAME's full pose ``(frames, 15)``: root, neck, jaw, eye L, eye R (zeros if absent)."""
        return assemble_pose(self.global_pose, self.neck_pose, self.jaw_pose, self.eye_pose,
                             n_frames=self.n_frames)

    def to_expression_track(self, start_s: float = 0.0) -> ExpressionTrack:
        """The ``flame`` space track: exp001…exp050, jaw_x/y/z, eyelid_l/r (absent → 0).

        Expression coefficients beyond the 50th are not part of the space and are left out
        (``meta["dropped_expression"]`` counts them); zero-padded when fewer.
        """
        values = np.zeros((self.n_frames, len(FLAME_EXPRESSION_NAMES)))
        n_exp = min(FLAME_EXP, self.expression.shape[1])
        values[:, :n_exp] = self.expression[:, :n_exp]
        if self.jaw_pose is not None:
            values[:, FLAME_EXP:FLAME_EXP + 3] = self.jaw_pose
        if self.eyelid is not None:
            values[:, FLAME_EXP + 3:FLAME_EXP + 5] = self.eyelid
        meta = {"source": self.source, "layout": self.meta.get("layout"),
                "dropped_expression": max(0, self.expression.shape[1] - FLAME_EXP),
                "absent": [n for n in ("jaw_pose", "eyelid") if getattr(self, n) is None]}
        return ExpressionTrack(values, FLAME_EXPRESSION_NAMES, self.fps, "flame", "1",
                               start_s, meta)

    @classmethod
    def from_expression_track(cls, track, base: "FlameParams | None" = None) -> "FlameParams":
        """Parameters from a ``flame``-space track (e.g. read back from a rig's F-curves).

        Missing track columns are zero. ``base`` supplies the groups the space lacks (shape,
        global/neck/eye pose, cam); it must have the same frame count.
        """
        if track.space != "flame":
            raise InputError(f"expected a track in the 'flame' space, got {track.space!r}.")
        index = {name: i for i, name in enumerate(track.names)}

        def columns(names):
            out = np.zeros((track.n_frames, len(names)))
            for j, name in enumerate(names):
                if name in index:
                    out[:, j] = track.values[:, index[name]]
            return out

        names = FLAME_EXPRESSION_NAMES
        extra = {}
        if base is not None:
            if base.n_frames != track.n_frames:
                raise InputError(f"base parameters have {base.n_frames} frames, the track "
                                 f"{track.n_frames}.")
            extra = {n: getattr(base, n) for n in ("shape", "global_pose", "neck_pose",
                                                   "eye_pose", "cam", "translation_m")}
        return cls(expression=columns(names[:FLAME_EXP]), fps=track.fps,
                   jaw_pose=columns(names[FLAME_EXP:FLAME_EXP + 3]),
                   eyelid=columns(names[FLAME_EXP + 3:FLAME_EXP + 5]),
                   source=str(track.meta.get("source", "")), meta={"layout": "track"}, **extra)


def _as_frames(value, name: str, where: str, n_frames: int | None) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {name!r} is not numeric.") from None
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise InputError(f"{where}: {name!r} has shape {array.shape}, expected (frames, width).")
    width = array.shape[1]
    limit = _MAX_WIDTH[name]
    if (name in _EXACT_WIDTH and width != limit) or not 0 < width <= limit:
        wanted = f"{limit}" if name in _EXACT_WIDTH else f"1..{limit}"
        raise InputError(f"{where}: {name!r} has {width} values per frame, expected {wanted}.")
    if n_frames is not None and array.shape[0] != n_frames:
        if name == "shape" and array.shape[0] == 1:  # one identity for the whole clip
            array = np.repeat(array, n_frames, axis=0)
        else:
            raise InputError(f"{where}: {name!r} has {array.shape[0]} frames but 'expression' "
                             f"has {n_frames}.")
    bad = ~np.isfinite(array)
    if bad.any():
        frame, column = (int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{where}: {name!r} has {int(bad.sum())} NaN/Inf value(s), first at "
                         f"frame {frame}, value {column}; fill or cut those frames first.")
    return np.ascontiguousarray(array)




def assemble_pose(global_pose=None, neck_pose=None, jaw_pose=None, eye_pose=None,
                  n_frames: int | None = None) -> np.ndarray:
    """FLAME's 15-value pose ``[root 3 | neck 3 | jaw 3 | eye L 3 | eye R 3]`` (axis-angle, rad).

    Each part is ``(3,)`` / ``(frames, 3)`` (``eye_pose`` 6); missing parts are zero. Returns
    ``(15,)`` when every part is a single vector and ``n_frames`` is None, else ``(frames, 15)``.
    """
    parts = [(global_pose, 3, "global_pose"), (neck_pose, 3, "neck_pose"),
             (jaw_pose, 3, "jaw_pose"), (eye_pose, 6, "eye_pose")]
    arrays = []
    batched = n_frames is not None
    for value, width, name in parts:
        if value is None:
            arrays.append(None)
            continue
        array = np.asarray(value, dtype=np.float64)
        if array.shape[-1] != width or array.ndim > 2:
            raise ValueError(f"{name} must have shape ({width},) or (frames, {width}), "
                             f"got {array.shape}")
        if array.ndim == 2:
            batched = True
            if n_frames is None:
                n_frames = array.shape[0]
            elif array.shape[0] != n_frames:
                raise ValueError(f"{name} has {array.shape[0]} frames, expected {n_frames}")
        arrays.append(array)
    frames = n_frames if batched else 1
    pose = np.zeros((frames, FLAME_POSE_SIZE))
    offsets = (0, 3, 6, 9)
    for array, (_, width, _), start in zip(arrays, parts, offsets):
        if array is not None:
            pose[:, start:start + width] = array
    return pose if batched else pose[0]



def layout_column_names(layout: str) -> list[str]:
    """Column names used in a header row for ``layout``."""
    suffixes = {"jaw_pose": ("jaw_x", "jaw_y", "jaw_z"),
                "global_pose": ("pose_x", "pose_y", "pose_z"),
                "eyelid": ("eyelid_l", "eyelid_r"), "cam": ("cam_s", "cam_tx", "cam_ty")}
    names = []
    for group, width in LAYOUTS[layout]:
        if group in suffixes:
            names += suffixes[group]
        else:
            stem = "exp" if group == "expression" else group
            names += [f"{stem}{i:03d}" for i in range(1, width + 1)]
    return names


def params_to_table(params: FlameParams, layout: str, drop_unsupported: bool = False) -> np.ndarray:
    """``(frames, columns)`` table of ``params`` in ``layout``; absent groups are written as 0.

    Raises
    ------
    InputError
        ``params`` holds non-zero values the layout cannot carry (e.g. expression 51–100 in a
        50-coefficient layout, eye pose in ``mmm``), unless ``drop_unsupported``.
    """
    if layout not in LAYOUTS:
        raise InputError(f"unknown FLAME parameter layout {layout!r}; known: {', '.join(LAYOUTS)}.")
    widths = dict(LAYOUTS[layout])
    lost = []
    for name, values in params.groups().items():
        carried = widths.get(name, 0)
        if np.any(values[:, carried:] != 0):
            lost.append(name if carried == 0 else f"{name}[{carried}:]")
    if lost and not drop_unsupported:
        raise InputError(f"the {layout!r} layout cannot hold {', '.join(lost)} (non-zero here); "
                         f"pick another layout or allow dropping them.")
    table = np.zeros((params.n_frames, LAYOUT_COLUMNS[layout]))
    start = 0
    for name, width in LAYOUTS[layout]:
        values = getattr(params, name)
        if values is not None:
            n = min(width, values.shape[1])
            table[:, start:start + n] = values[:, :n]
        start += width
    return table




__all__ = [
    "FlameParams", "LAYOUTS", "LAYOUT_COLUMNS", "DEFAULT_FPS", "FLAME_JOINT_NAMES", "FLAME_POSE_SIZE",
    "assemble_pose", "params_to_table", "layout_column_names",
]
