"""The fast keyframe path writes exactly what Blender's own insert writes, and stashes safely."""
import importlib

import bpy
import numpy as np
import pytest

from tests.conftest import EXTENSION_MODULE


@pytest.fixture
def keyframes(blender):
    return importlib.import_module(f"{EXTENSION_MODULE}.blender.anim.keyframes")


def _object_with_custom_props(names):
    obj = bpy.data.objects.new("Target", None)
    bpy.context.scene.collection.objects.link(obj)
    for name in names:
        obj[name] = 0.0
    return obj


def _keys(fcurve):
    n = len(fcurve.keyframe_points)
    out = {}
    for prop, width in (("co", 2), ("handle_left", 2), ("handle_right", 2), ("interpolation", 1),
                        ("handle_left_type", 1), ("handle_right_type", 1)):
        buf = np.empty(n * width, dtype=np.float64 if width == 2 else np.int64)
        fcurve.keyframe_points.foreach_get(prop, buf)
        out[prop] = buf
    return out


@pytest.mark.parametrize("interpolation", ["LINEAR", "BEZIER", "CONSTANT"])
def test_fast_path_equals_keyframe_insert(keyframes, interpolation):
    rng = np.random.default_rng(1)
    frames = np.arange(1, 41, dtype=np.float32)
    values = rng.random((frames.size, 2)).astype(np.float32)
    obj = _object_with_custom_props(["a", "b"])
    _, bag = keyframes.new_action(obj, "fast")
    fast = keyframes.write_curves(bag, ['["a"]', '["b"]'], frames, values, interpolation=interpolation)

    reference_obj = _object_with_custom_props(["a", "b"])
    _, ref_bag = keyframes.new_action(reference_obj, "reference")
    for column, path in enumerate(['["a"]', '["b"]']):
        fc = ref_bag.fcurves.new(path, index=0)
        for f, v in zip(frames, values[:, column]):
            fc.keyframe_points.insert(float(f), float(v)).interpolation = interpolation
        fc.update()
    between = np.linspace(0.0, 42.0, 337)  # between, on and beyond the keys
    for column, path in enumerate(['["a"]', '["b"]']):
        reference = ref_bag.fcurves.find(path)
        got, want = _keys(fast[column]), _keys(reference)
        # LINEAR keys in order are written without handles (they never shape a LINEAR segment)
        props = ("co", "interpolation") if interpolation == "LINEAR" else want
        for prop in props:
            np.testing.assert_allclose(got[prop], want[prop], rtol=0, atol=1e-6, err_msg=prop)
        np.testing.assert_allclose([fast[column].evaluate(f) for f in between],
                                   [reference.evaluate(f) for f in between], rtol=0, atol=1e-6)


@pytest.mark.parametrize("interpolation", ["LINEAR", "BEZIER"])
def test_reading_curves_back_equals_blenders_evaluation(keyframes, interpolation):
    rng = np.random.default_rng(2)
    frames = np.sort(rng.choice(np.arange(1, 400), 120, replace=False)).astype(np.float32)  # reduced keys
    obj = _object_with_custom_props(["a"])
    _, bag = keyframes.new_action(obj, "read")
    fcurve, = keyframes.write_curves(bag, ['["a"]'], frames, rng.random((frames.size, 1)), interpolation=interpolation)
    at = np.linspace(-5.0, 410.0, 2000)  # between keys and beyond both ends
    np.testing.assert_allclose(keyframes.sample_curve(fcurve, at), [fcurve.evaluate(f) for f in at], atol=1e-6)
    fcurve.modifiers.new("NOISE")  # a modifier: Blender evaluates it
    np.testing.assert_allclose(keyframes.sample_curve(fcurve, at), [fcurve.evaluate(f) for f in at], atol=1e-6)


def test_write_replaces_existing_curve_and_reads_back(keyframes):
    obj = _object_with_custom_props(["a"])
    _, bag = keyframes.new_action(obj, "x")
    keyframes.write_curves(bag, ['["a"]'], [1, 2, 3], np.ones((3, 1)))
    keyframes.write_curves(bag, ['["a"]'], [1, 2], np.array([[0.25], [0.5]]))
    assert len(bag.fcurves) == 1
    frames, values = keyframes.read_keys(bag.fcurves[0])
    np.testing.assert_array_equal(frames, [1, 2])
    np.testing.assert_array_equal(values, [0.25, 0.5])
    assert keyframes.assigned_channelbag(obj) == bag


def test_shape_mismatch_is_refused(keyframes):
    obj = _object_with_custom_props(["a"])
    _, bag = keyframes.new_action(obj, "x")
    with pytest.raises(ValueError):
        keyframes.write_curves(bag, ['["a"]'], [1, 2, 3], np.ones((2, 1)))


def test_stash_and_restore_keeps_hand_keyed_animation(keyframes):
    obj = _object_with_custom_props(["a"])
    obj.keyframe_insert('["a"]', frame=1)
    obj["a"] = 1.0
    obj.keyframe_insert('["a"]', frame=10)
    hand_action = obj.animation_data.action
    assert keyframes.stash_assigned_action(obj) == hand_action.name
    keyframes.new_action(obj, "driven")
    assert obj.animation_data.action.name == "driven"
    bpy.context.scene.frame_set(10)
    assert obj.animation_data.nla_tracks[0].mute  # the stash does not blend into the new action
    assert keyframes.restore_previous_action(obj)
    assert obj.animation_data.action == hand_action
    assert len(obj.animation_data.nla_tracks) == 0
    bpy.context.scene.frame_set(10)
    assert obj["a"] == pytest.approx(1.0)
    assert not keyframes.restore_previous_action(obj)


def test_any_number_of_drives_then_restore_brings_back_the_users_own_action(keyframes):
    obj = _object_with_custom_props(["a"])
    obj.keyframe_insert('["a"]', frame=1)
    hand_action = obj.animation_data.action
    for drive in range(3):
        keyframes.stash_assigned_action(obj)
        keyframes.new_action(obj, f"driven {drive}")
    assert obj.animation_data.action.name == "driven 2"
    assert "driven 0" not in bpy.data.actions and "driven 1" not in bpy.data.actions  # superseded drives go
    assert len(obj.animation_data.nla_tracks) == 1  # one stash, the user's
    assert keyframes.restore_previous_action(obj)
    assert obj.animation_data.action == hand_action
    assert all(a.users > 0 or a.use_fake_user for a in bpy.data.actions)  # nothing vanishes on save
    assert bpy.data.actions["driven 2"].use_fake_user


def test_reduced_keys_reproduce_the_curve_within_tolerance(keyframes, blender):
    from importlib import import_module

    curves = import_module(f"{EXTENSION_MODULE}.core.expression.curves")
    frames = np.arange(1, 501, dtype=np.float32)
    values = np.stack([np.sin(frames / 120.0) ** 2, np.clip(np.cos(frames / 80.0), 0, 1)], axis=1)
    keep = curves.reduce_keys(values, 0.002)
    obj = _object_with_custom_props(["a", "b"])
    _, bag = keyframes.new_action(obj, "reduced")
    written = keyframes.write_curves(bag, ['["a"]', '["b"]'], frames, values, keep=keep)
    for column, fcurve in enumerate(written):
        assert len(fcurve.keyframe_points) == keep[:, column].sum() < 0.3 * frames.size
        evaluated = np.array([fcurve.evaluate(float(f)) for f in frames])
        assert np.max(np.abs(evaluated - values[:, column])) < 0.002 + 1e-5
