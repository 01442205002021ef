"""A lab's 2-channel recording in Blender: channels guessed and shown, corrected in the table, units asked for."""
import importlib
import shutil

import bpy
import numpy as np
import pytest

from tests.conftest import EXTENSION_MODULE
from tests.helpers import REAL_DATA, needs_real_data

RATE_HZ = 2000.0


def _ext(name):
    return importlib.import_module(f"{EXTENSION_MODULE}.{name}")


@pytest.fixture
def lab_csv(tmp_path):
    """``Time,EMG_zyg,EMG_cor`` at 2000 Hz in mV with a byte-order mark, as a lab exports it."""
    rng = np.random.default_rng(3)
    n = int(12 * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    zyg = (3.0 + 40.0 * ((t > 4) & (t < 6))) * rng.standard_normal(n) * 1e-3
    cor = (3.0 + 30.0 * ((t > 8) & (t < 10))) * rng.standard_normal(n) * 1e-3
    rows = "\n".join(f"{a:.6f},{b:.9g},{c:.9g}" for a, b, c in zip(t, zyg, cor))
    path = tmp_path / "lab.csv"
    path.write_text("\ufeffTime,EMG_zyg,EMG_cor\n" + rows + "\n", encoding="utf-8")
    return path


def _state():
    return (sorted(o.name for o in bpy.data.objects), sorted(a.name for a in bpy.data.actions),
            bpy.context.scene.eifer.recording)


def test_import_guesses_the_channels_shows_them_and_reads_the_table_back(blender, lab_csv):
    settings = bpy.context.scene.eifer
    settings.units, settings.side = "mV", "LEFT"
    assert bpy.ops.eifer.import_emg(filepath=str(lab_csv)) == {"FINISHED"}
    track = _ext("blender.anim.emg_object").read_emg_object(settings.recording)
    assert track.names == ("Corr_L", "Zyg_L") and track.units == "uV"
    assert 1.0 < np.percentile(track.column("Zyg_L"), 10) < 10.0  # µV at rest: mV were converted
    rows = {row.channel: row.site for row in settings.channel_sites}
    assert rows == {"EMG_zyg": "Zyg_L", "EMG_cor": "Corr_L"}
    # the user corrects the table (the electrodes were swapped) and imports again
    settings.channel_sites[0].site, settings.channel_sites[1].site = "Corr_L", "Zyg_L"
    settings.mirror = True
    assert bpy.ops.eifer.import_emg(filepath=str(lab_csv)) == {"FINISHED"}
    swapped = _ext("blender.anim.emg_object").read_emg_object(settings.recording)
    assert swapped.names == ("Corr_R", "Corr_L", "Zyg_R", "Zyg_L")
    np.testing.assert_allclose(swapped.column("Corr_L"), track.column("Zyg_L"), rtol=1e-5)


def test_units_must_be_given_and_a_bad_table_changes_nothing(blender, lab_csv):
    settings = bpy.context.scene.eifer
    settings.side = "LEFT"
    before = _state()
    with pytest.raises(RuntimeError, match="units"):
        bpy.ops.eifer.import_emg(filepath=str(lab_csv))
    assert _state() == before
    settings.units = "mV"
    assert bpy.ops.eifer.import_emg(filepath=str(lab_csv)) == {"FINISHED"}
    before = _state()
    settings.channel_sites[0].site = "Zyg_X"
    with pytest.raises(RuntimeError, match="unknown site 'Zyg_X'"):
        bpy.ops.eifer.import_emg(filepath=str(lab_csv))
    assert _state() == before


def test_driving_with_two_channels_keys_the_shapes_they_move_and_lists_the_rest(blender, lab_csv):
    """The classic set-up in a lab's file (mV, odd names, one side): the channel-flexible model
    keys what Zyg_L and Corr_L move and the Drive panel lists the shapes it left alone."""
    settings = bpy.context.scene.eifer
    settings.units, settings.side = "mV", "LEFT"
    assert bpy.ops.eifer.add_open_head() == {"FINISHED"}
    assert bpy.ops.eifer.import_emg(filepath=str(lab_csv)) == {"FINISHED"}
    assert bpy.ops.eifer.drive_face() == {"FINISHED"}
    assert set(settings.driven_shapes.split(", ")) == {"browDownLeft", "mouthSmileLeft"}
    assert len(settings.left_alone_shapes.split(", ")) == 35


@needs_real_data
@pytest.mark.parametrize("model", ["emg2arkit", "emg2arkit_causal"])
def test_the_command_line_drives_the_real_headerless_export_as_told(blender, tmp_path, capsys, model):
    """The real 100 Hz envelope export (Nilsonne, CC0) has no header and no time column: ``drive``
    reads it with ``--rate`` and ``--csv-kind`` as ``process`` does, and smiles on its zygomaticus burst."""
    export = shutil.copy(REAL_DATA / "nilsonne_FMOV_09_preprocessed.txt", tmp_path / "FMOV_09.txt")
    cli, out = _ext("cli"), tmp_path / "driven.blend"
    models = _ext("core.network")
    argv = ["drive", "--emg", str(export), "--map", "4=Zyg_L", "--map", "5=Corr_L", "--out", str(out),
            "--model", str(models.shipped_model_path(model)), "--providers", "cpu"]
    assert cli.main(argv) == 3 and "--rate" in capsys.readouterr().err and not out.exists()
    assert cli.main(argv + ["--rate", "100", "--csv-kind", "envelope"]) == 0
    assert "driven: 2 shapes (browDownLeft, mouthSmileLeft)" in capsys.readouterr().out and out.is_file()
