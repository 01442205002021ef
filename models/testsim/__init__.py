"""A second, independent facial sEMG simulator: FROZEN, for TESTING models only.

Never use it to train, tune, select or calibrate a model: its whole value is that the models have
never seen it. It shares no code or tables with the training simulator
(``eifer_blender.core.simulator``); only the project's containers (Recording, tracks, the
Fridlund-22 names and sites, the ARKit-52 names) are used. Where real faces differ from the
training simulator, this one differs: muscle synergies, anisotropic crosstalk with electrode
shifts up to 10 mm, speech/chewing crosstalk, a saturating activation -> AU -> ARKit map, van
Boxtel's corrugator spectrum, low activity/rest ratios (2-10×), amplifier gain 0.3-3×, mains with
harmonics, blinks and motion artefacts.

Modules: :mod:`.face` (muscles -> AUs -> ARKit), :mod:`.signal` (sEMG synthesis),
:mod:`.session` (protocols and sessions). Record :func:`source_hash` in a model card next to the
test figures, so they name the exact simulator that made them; change the simulator only on purpose
(the hash changes with it).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

TEST_PROTOCOLS: tuple[str, ...] = ("emotions", "posed", "mixed")


def source_hash() -> str:
    """sha256[:16] of this package's .py files (names and contents, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


from .session import TestSession, probe_session, simulate_test_session  # noqa: E402

__all__ = ["TEST_PROTOCOLS", "TestSession", "probe_session", "simulate_test_session", "source_hash"]
