"""The forward data path's curve conditioning: rest floor, on its own and inside emg_to_expression."""
import numpy as np
import pytest

from eifer_blender.core.errors import InputError, ModelMismatchError
from eifer_blender.core.expression import curves
from eifer_blender.core.expression.spaces import FLAME_EXPRESSION_NAMES
from eifer_blender.core.network import ModelMetadata
from eifer_blender.core.pipeline import DriveSettings, emg_to_expression
from eifer_blender.core.recording.montage import FRIDLUND22
from eifer_blender.core.simulator import session as sim_session
from models.export import export_onnx
from models.nets import NetConfig, WindowNet


def test_rest_floor_zeroes_small_weights_and_keeps_order_and_full_scale():
    values = np.array([[0.0], [0.03], [0.05], [0.06], [0.5], [1.0]])
    out = curves.apply_rest_floor(values, 0.05)
    np.testing.assert_allclose(out[:, 0], [0, 0, 0, 0.01 / 0.95, 0.45 / 0.95, 1.0])
    dense = np.linspace(0, 1, 2001)[:, None]
    gated = curves.apply_rest_floor(dense, 0.1)
    assert np.all(np.diff(gated[:, 0]) >= 0)  # order kept
    assert np.abs(np.diff(gated[:, 0])).max() < 1e-3  # continuous: nothing jumps at the floor
    np.testing.assert_array_equal(curves.apply_rest_floor(values, 0.0), values)
    for bad in (-0.1, 1.0, 2.0):
        with pytest.raises(InputError, match="rest floor"):
            curves.apply_rest_floor(values, bad)


@pytest.fixture(scope="module")
def emotions():
    return sim_session.simulate_session("emotions", subject=9, duration_s=12.0, rate_hz=2048.0, fps=30.0, seed=2)


def test_drive_with_a_rest_floor_is_the_floor_applied_to_the_network_output(emotions):
    raw = emg_to_expression(emotions.recording, DriveSettings(fps=30.0), providers="cpu").expression
    gated = emg_to_expression(emotions.recording, DriveSettings(fps=30.0, rest_floor=0.05),
                              providers="cpu").expression
    np.testing.assert_allclose(gated.values, curves.apply_rest_floor(raw.values, 0.05), atol=1e-12)
    brows = gated.column("browInnerUp")  # surprise and fear raise the inner brows
    assert (brows == 0).mean() > 0.3 and brows.max() > 0.3  # still at rest, moving when raised


def test_bad_rest_floor_is_refused_before_the_recording_is_read(tmp_path):
    with pytest.raises(InputError, match="rest floor"):
        emg_to_expression(tmp_path / "not_there.edf", DriveSettings(fps=30.0, rest_floor=1.0))


def test_rest_floor_is_refused_for_signed_flame_coefficients(tmp_path, emotions):
    net = WindowNet(NetConfig(22, len(FLAME_EXPRESSION_NAMES), hidden=8, head="linear")).eval()
    metadata = ModelMetadata(direction="emg2exp", input_name="emg", input_space="fridlund22", input_names=FRIDLUND22,
                             input_units="normalised", input_normalisation={"method": "none"},
                             output_space="flame", output_names=FLAME_EXPRESSION_NAMES, output_units="1",
                             head="linear", fps=30.0, window=1, alignment="centred", training_data="unit test",
                             version="0.0.1")
    path = export_onnx(net, metadata, tmp_path / "flame.onnx")
    with pytest.raises(ModelMismatchError, match="signed"):
        emg_to_expression(emotions.recording, DriveSettings(fps=30.0, rest_floor=0.05), path, providers="cpu")
    signed = emg_to_expression(emotions.recording, DriveSettings(fps=30.0), path, providers="cpu").expression
    assert (signed.values < 0).any()  # why a floor makes no sense there


def test_a_calibration_block_alone_means_the_posed_maximum_calibration():
    """``calibration_s`` without ``calibration`` reads the block (as ``--calibration`` does on the
    command line), the same as naming the calibration or marking the block with events."""
    from eifer_blender.core.recording import Annotation

    recording = sim_session.simulate_session("emotions", 7, 20.0, 2048.0, 30.0, seed=1).recording
    block = emg_to_expression(recording, DriveSettings(fps=30.0, calibration_s=((2.0, 12.0),)))
    named = emg_to_expression(recording, DriveSettings(fps=30.0, calibration="calibration",
                                                       calibration_s=((2.0, 12.0),)))
    recording.annotations.append(Annotation(2.0, 10.0, "Calibration"))
    marked = emg_to_expression(recording, DriveSettings(fps=30.0, calibration="calibration"))
    percentile = emg_to_expression(recording, DriveSettings(fps=30.0))
    np.testing.assert_array_equal(block.expression.values, named.expression.values)
    np.testing.assert_array_equal(block.expression.values, marked.expression.values)
    assert np.abs(block.expression.values - percentile.expression.values).max() > 0.01
