"""Linear retargeting between parameter spaces, e.g. ARKit-52 weights → FLAME expression + jaw.

Known ARKit↔FLAME bridges are linear matrices computed from FLAME and so carrying its
licence (https://flame.is.tue.mpg.de/modellicense.html), so none ships:
the user loads their own. Preferred file: ``.npz`` with ``matrix`` (outputs × inputs),
``input_names`` and ``output_names`` (optional ``bias``), which states its own layout. A bare
``.npy`` is read as inputs × outputs (the ``arkit @ matrix`` convention) with inputs in
``spaces.ARKIT52`` order (52, or 51 without tongueOut) and outputs FLAME expression 1..N then jaw
(3 axis-angle values): check your matrix's order before trusting it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..tracks import ExpressionTrack
from .spaces import ARKIT52, FLAME_EXPRESSION_NAMES


@dataclass(frozen=True)
class Retarget:
    matrix: np.ndarray  # (outputs, inputs)
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    input_space: str
    output_space: str
    bias: np.ndarray | None = None
    source: str = ""

    def apply(self, track: ExpressionTrack) -> ExpressionTrack:
        """Map a track; inputs the track lacks count as 0 (an ARKit rig need not have all 52)."""
        if track.space != self.input_space:
            raise InputError(f"{Path(self.source).name or 'the retarget matrix'} maps {self.input_space} "
                             f"to {self.output_space}; the track is in {track.space!r}")
        index = {n: i for i, n in enumerate(track.names)}
        if not any(n in index for n in self.input_names):
            raise InputError(f"none of the track's names are inputs of {self.source or 'the retarget matrix'}")
        inputs = np.zeros((track.n_frames, len(self.input_names)))
        for j, name in enumerate(self.input_names):
            if name in index:
                inputs[:, j] = track.values[:, index[name]]
        out = inputs @ self.matrix.T
        if self.bias is not None:
            out = out + self.bias
        return ExpressionTrack(out, self.output_names, track.fps, self.output_space, "1", track.start_s,
                               {**track.meta, "retarget": self.source})


def _flame_output_names(n_outputs: int) -> tuple[str, ...]:
    n_exp = n_outputs - 3
    if not 1 <= n_exp <= 100:
        raise InputError(f"a FLAME retarget needs expression coefficients + 3 jaw values as outputs, got {n_outputs}")
    return tuple(f"exp{i:03d}" for i in range(1, n_exp + 1)) + FLAME_EXPRESSION_NAMES[50:53]


def load_retarget(path: str | Path, input_space: str = "arkit52", output_space: str = "flame") -> Retarget:
    """Read a retarget matrix file (see the module notes for the layouts)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: retarget matrix file not found")
    try:
        data = np.load(path, allow_pickle=False)  # a matrix never needs pickled objects
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .npy/.npz matrix ({exc})") from exc
    bias = None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            missing = [k for k in ("matrix", "input_names", "output_names") if k not in data.files]
            if missing:
                raise InputError(f"{path}: a retarget .npz needs matrix, input_names and output_names; "
                                 f"it lacks {', '.join(missing)}")
            matrix = np.asarray(data["matrix"], dtype=np.float64)
            inputs = tuple(str(n) for n in data["input_names"])
            outputs = tuple(str(n) for n in data["output_names"])
            bias = np.asarray(data["bias"], dtype=np.float64) if "bias" in data.files else None
        if matrix.shape != (len(outputs), len(inputs)):
            raise InputError(f"{path}: matrix is {matrix.shape}, expected (outputs={len(outputs)}, "
                             f"inputs={len(inputs)})")
    else:
        matrix = np.asarray(data, dtype=np.float64)
        if matrix.ndim != 2:
            raise InputError(f"{path}: expected a 2-D matrix, got shape {matrix.shape}")
        arkit51 = tuple(n for n in ARKIT52 if n != "tongueOut")
        if matrix.shape[0] in (51, 52):
            inputs = ARKIT52 if matrix.shape[0] == 52 else arkit51
            matrix = matrix.T
        elif matrix.shape[1] in (51, 52):
            inputs = ARKIT52 if matrix.shape[1] == 52 else arkit51
        else:
            raise InputError(f"{path}: shape {matrix.shape} has no side of 51 or 52 ARKit inputs")
        outputs = _flame_output_names(matrix.shape[0])
    if not np.all(np.isfinite(matrix)) or (bias is not None and not np.all(np.isfinite(bias))):
        raise InputError(f"{path}: the matrix holds NaN or infinite values")
    return Retarget(matrix, inputs, outputs, input_space, output_space, bias, str(path))
