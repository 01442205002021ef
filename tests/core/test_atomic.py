"""Outputs written through a temporary file keep the permissions a plainly written file would have."""
import os
import stat

from eifer_blender.core.atomic import atomic_file


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_output_gets_the_users_default_mode_and_a_replaced_one_keeps_its_own(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("x\n")
    made = tmp_path / "made.csv"
    with atomic_file(made) as temporary:
        temporary.write_text("x\n")
    assert _mode(made) == _mode(plain)  # not mkstemp's private 0600
    os.chmod(made, 0o640)
    with atomic_file(made) as temporary:
        temporary.write_text("y\n")
    assert _mode(made) == 0o640 and made.read_text() == "y\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["made.csv", "plain.csv"]
