"""Every shipped model has its card: what it is, the data, held-out metrics against baselines, limits."""
import pytest

from eifer_blender.core.network import SHIPPED_MODELS, load_model, shipped_model_path
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_every_shipped_model_has_a_card_for_the_version_it_ships(name):
    card = REPO_ROOT / "models" / f"{name}.md"
    assert card.is_file(), f"{name}.onnx ships without a card (models/{name}.md)"
    text = card.read_text(encoding="utf-8")
    version = load_model(shipped_model_path(name), "cpu").metadata.version
    title = text.splitlines()[0]
    assert title.startswith(f"# Model card: `{name}` ")
    assert version in title or version.removesuffix(".0") in title, f"{title!r} is not the card of {version}"
    assert f"eifer_blender/models/{name}.onnx" in text and f"models/configs/{name}.toml" in text
    for needed in ("ridge", "mean", "held-out", "## Limits"):
        assert needed in text, f"{name}'s card says nothing of {needed!r}"
