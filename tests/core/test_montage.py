"""Montages: canonical names, the aliases real files use, pairing, mirroring, bipolar derivation."""
from __future__ import annotations

import numpy as np
import pytest

from eifer_blender.core.errors import InputError
from eifer_blender.core.recording.channel_map import (
    bipolar_matrix,
    guess_montage,
    resolve_channels,
)
from eifer_blender.core.recording.montage import (
    FRIDLUND22,
    KURAMOTO19,
    KURAMOTO_PAIRS,
    MONTAGES,
    canonical_name,
    fridlund_sites_mm,
    kuramoto_sites_mm,
    mirror_channel,
    mirror_name,
    mirror_values,
    pair_indices,
    resolve_space,
    sites_mm,
    split_electrode,
)

# Jena names of the electromyogram package's Fridlund scheme -> F-number (its `mapping`)
JENA_TO_F = {
    "Corr li": 6, "Corr re": 5, "DAO li": 14, "DAO re": 13, "Deprsup li": 8, "Deprsup re": 7,
    "lat Front li": 4, "lat Front re": 3, "Llsup li": 10, "Llsup re": 9, "Mass li": 22,
    "Mass re": 21, "med Front li": 2, "med Front re": 1, "Ment li": 16, "Ment re": 15,
    "OrbOc li": 18, "OrbOc re": 17, "OrbOr li": 12, "OrbOr re": 11, "Zyg li": 20, "Zyg re": 19,
}


def test_fridlund22_order_and_f_numbers():
    assert len(FRIDLUND22) == 22 and len(set(FRIDLUND22)) == 22
    for number, name in enumerate(FRIDLUND22, start=1):
        assert canonical_name(f"F{number}") == name
        assert name.endswith("_R" if number % 2 else "_L")  # odd F-numbers are the right side


@pytest.mark.parametrize("jena, number", sorted(JENA_TO_F.items()))
def test_jena_names_resolve_to_the_same_site_as_their_f_number(jena, number):
    assert canonical_name(jena) == canonical_name(f"F{number}") is not None


@pytest.mark.parametrize("label, expected", [
    ("Zyg_L", "Zyg_L"), ("zyg_l", "Zyg_L"), ("ZYG LI", "Zyg_L"), ("EMG Zyg_L", "Zyg_L"),
    ("EMG-Zyg li", "Zyg_L"), ("Zyg left", "Zyg_L"), ("left Zyg", "Zyg_L"), ("f20", "Zyg_L"),
    ("EMG F20", "Zyg_L"), ("Corr re", "Corr_R"), ("Deprsup li", "DepSup_L"),
    ("DepSup_L", "DepSup_L"), ("med Front re", "medFront_R"), ("medfront_r", "medFront_R"),
    ("Mass_right", "Mass_R"),
])
def test_aliases(label, expected):
    assert canonical_name(label) == expected


@pytest.mark.parametrize("label", ["Fz", "Zyg", "F23", "F0", "EMG", "Zyg_X", "K1", "E3"])
def test_non_sites_do_not_resolve(label):
    assert canonical_name(label) is None


def test_kuramoto_names_and_file_aliases():
    assert len(KURAMOTO19) == 19
    for name in KURAMOTO19:
        assert canonical_name(name, "kuramoto19") == name
        assert canonical_name("E" + name[1:], "kuramoto19") == name
        assert canonical_name("EMG " + name.lower(), "kuramoto19") == name
    assert canonical_name("E11", "kuramoto19") is None  # K11/K12 are not in the scheme
    assert canonical_name("F1", "kuramoto19") is None


def test_site_coordinates():
    fr = fridlund_sites_mm()
    assert fr.shape == (22, 2)
    # right side (odd F-numbers, first of each pair) is negative x, mirrored exactly
    np.testing.assert_array_equal(fr[0::2, 0], -fr[1::2, 0])
    assert (fr[0::2, 0] < 0).all()
    np.testing.assert_array_equal(sites_mm("fridlund22"), fr)
    ku = kuramoto_sites_mm()
    assert ku.shape == (19, 2)
    np.testing.assert_array_equal(sites_mm("kuramoto19"), ku)
    index = {n: i for i, n in enumerate(KURAMOTO19)}
    for left, right in KURAMOTO_PAIRS:
        assert ku[index[left], 0] > 0 > ku[index[right], 0]  # subject's right = negative x
        assert ku[index[left], 1] == ku[index[right], 1]
    for mid in ("K19", "K20", "K24"):
        assert ku[index[mid], 0] == 0.0


def test_mirroring():
    for name in FRIDLUND22:
        assert mirror_channel(name) == mirror_name(name) != name
        assert mirror_channel(mirror_channel(name)) == name
    assert mirror_channel("K2", "kuramoto19") == "K1"
    assert mirror_channel("K17", "kuramoto19") == "K18"
    assert mirror_channel("K24", "kuramoto19") == "K24"
    values = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(mirror_values(values, ["Zyg_L", "Zyg_R", "Mass_L"]), [[2.0, 1.0, 3.0]])
    np.testing.assert_array_equal(mirror_values(values, ["K1", "K19", "K2"], "kuramoto19"),
                                  [[3.0, 2.0, 1.0]])


def test_pair_indices_are_left_right():
    names = ["Zyg_R", "Corr_L", "Zyg_L", "Mass_L", "Corr_R"]
    assert sorted(pair_indices(names)) == [(1, 4), (2, 0)]
    assert pair_indices(["K1", "K2", "K19"], "kuramoto19") == [(1, 0)]


@pytest.mark.parametrize("label, expected", [
    ("Zyg li 1", ("Zyg li", 1)), ("Zyg li 2", ("Zyg li", 2)), ("Zyg_L_1", ("Zyg_L", 1)),
    ("F20-2", ("F20", 2)), ("Zyg_L_a", ("Zyg_L", 1)), ("Zyg_L.b", ("Zyg_L", 2)),
    ("E5_1", ("E5", 1)), ("Zyg_L", None), ("F2", None), ("Mass_R_3", None),
])
def test_split_electrode(label, expected):
    assert split_electrode(label) == expected


def test_resolve_direct_bipolar_and_unknown():
    names = ["Zyg li 1", "Zyg li 2", "EMG Corr re", "F21_1", "F21_2", "Trigger"]
    cmap = resolve_channels(names)
    assert cmap.montage == "fridlund22"
    assert cmap.direct == {"Corr_R": "EMG Corr re"}
    assert cmap.bipolar == {"Zyg_L": ("Zyg li 1", "Zyg li 2"), "Mass_R": ("F21_1", "F21_2")}
    assert cmap.unknown == ("Trigger",)
    assert cmap.canonical == ("Corr_R", "Zyg_L", "Mass_R")  # montage order
    assert len(cmap.missing()) == 19 and "Zyg_R" in cmap.missing()
    assert cmap.sources()["Zyg_L"] == "Zyg li 1 - Zyg li 2"
    assert cmap.by_label == {"EMG Corr re": "Corr_R", "Zyg li 1": "Zyg_L", "Zyg li 2": "Zyg_L",
                             "F21_1": "Mass_R", "F21_2": "Mass_R"}
    matrix, out = bipolar_matrix(names, cmap)
    assert out == cmap.canonical
    np.testing.assert_array_equal(matrix[1], [1, -1, 0, 0, 0, 0])
    np.testing.assert_array_equal(matrix[0], [0, 0, 1, 0, 0, 0])


def test_resolve_errors_name_the_problem():
    with pytest.raises(InputError) as err:
        resolve_channels(["Zyg li", "F20"], source="rec.edf")
    assert "rec.edf" in str(err.value) and "Zyg_L" in str(err.value)
    with pytest.raises(InputError) as err:
        resolve_channels(["Zyg li 1", "Corr re"], source="rec.edf")
    assert "partner" in str(err.value) and "Zyg li 1" in str(err.value)
    with pytest.raises(InputError) as err:
        resolve_channels(["Zyg li", "Zyg re"], required=["Zyg_L", "Zyg_R", "Corr_L", "Mass_R"],
                         source="rec.edf")
    message = str(err.value)
    assert "rec.edf" in message and "Corr_L" in message and "Mass_R" in message
    assert "Zyg_R" not in message.split(":")[-1]
    with pytest.raises(InputError) as err:
        resolve_channels(["Zyg_L"], required="all")
    assert all(n in str(err.value) for n in FRIDLUND22 if n != "Zyg_L")
    with pytest.raises(InputError):
        resolve_channels(["Zyg_L"], montage="10-20")


def test_guess_montage_and_space():
    assert guess_montage(["E1", "E2", "E19", "Trigger"]) == "kuramoto19"
    assert guess_montage(["Zyg li 1", "Zyg li 2", "Corr re"]) == "fridlund22"
    assert guess_montage(["Fz", "Cz"]) is None
    assert resolve_channels(["E1", "E2"], montage="auto").montage == "kuramoto19"
    assert resolve_space(["Zyg_L", "Corr_R"]) == "fridlund22"
    assert resolve_space(["K1", "K24"]) == "kuramoto19"
    assert resolve_space(["Zyg li"]) == "emg"
    assert set(MONTAGES) == {"fridlund22", "kuramoto19"}


def test_kuramoto_monopolar_pairs_use_the_same_convention():
    data = np.arange(8.0).reshape(4, 2)
    names = ["E1_1", "E1_2", "E24-1", "E24-2"]
    matrix, out = bipolar_matrix(names, resolve_channels(names, "kuramoto19"))
    assert list(out) == ["K1", "K24"]
    np.testing.assert_array_equal(matrix @ data, [[-2.0, -2.0], [-2.0, -2.0]])
