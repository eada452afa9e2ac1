from __future__ import annotations

import pytest

from seekforge.core.errors import ConfigError
from seekforge.recipe import load_recipe
from seekforge.tune.config import Ends, apply, draw
from tests.conftest import tabular_recipe

LR = {"suggest": "float", "low": 1e-4, "high": 0.1, "log": True}
MODELS = [
    {"type": "mlp", "hidden": {"suggest": "categorical", "choices": [[8], [32, 16]]},
     "dropout": {"suggest": "float", "low": 0.0, "high": 0.5}},
    {"type": "mlp", "hidden": [64], "dropout": 0.1},
]  # fmt: skip


def tuned(**tune: object) -> dict[str, object]:
    recipe = tabular_recipe("/data/x.csv")
    recipe["tune"] = {"search_space": {"train.lr": LR}, **tune}
    return recipe


def test_draw_puts_values_and_architectures_into_the_recipe() -> None:
    recipe = load_recipe(tuned(models=MODELS, trials=5))
    low = draw(Ends(high=False, model=0), recipe.tune)
    assert low == {"train.lr": 1e-4, "model": {"type": "mlp", "hidden": [8], "dropout": 0.0}}
    high = draw(Ends(high=True, model=1), recipe.tune)
    assert high["model"] == MODELS[1] and high["train.lr"] == 0.1
    drawn = load_recipe(apply(recipe.trial_base(), high))
    assert drawn.tune is None and drawn.train.lr == 0.1 and drawn.model.hidden == [64]
    assert drawn.train.epochs == recipe.train.epochs and drawn.data == recipe.data  # the rest stays


def test_tune_section_is_validated_with_the_recipe() -> None:
    def problems(**tune: object) -> str:
        with pytest.raises(ConfigError) as info:
            load_recipe(tuned(**tune))
        return str(info.value)

    with pytest.raises(ConfigError, match="nothing to search"):
        load_recipe({**tuned(), "tune": {}})
    assert "may not vary data.split.train" in problems(search_space={"data.split.train": LR})
    assert "'val_acc' is not recorded" in problems(metric="val_acc")
    assert "pruning needs a single objective" in problems(objectives=["latency"])
    assert "train.lrr: Extra inputs are not permitted" in problems(search_space={"train.lrr": LR})
    bad_model = [{"type": "mlp", "hidden": {"suggest": "int", "low": 0, "high": 3}}]
    assert "high end of every range, models[0]" not in problems(models=bad_model)  # low end fails first
    assert "low end of every range, models[0]" in problems(models=bad_model)
    assert "low (0.1) must be below high" in problems(search_space={"train.lr": {**LR, "low": 0.1, "high": 0.01}})
    ok = load_recipe(tuned(objectives=["parameters"], pruner="none", sampler="random", workers=2))
    assert ok.tune.objectives == ["parameters"] and ok.tune.workers == 2


def test_studies_of_other_spaces_get_other_names() -> None:
    from seekforge.tune._storage import study_name

    one = load_recipe(tuned())
    assert study_name(one) == study_name(load_recipe(tuned(trials=99, workers=3)))  # the budget may change
    other = load_recipe(tuned(search_space={"train.lr": {**LR, "high": 0.5}}))
    assert study_name(one) != study_name(other) and study_name(one).startswith("tiny-")
