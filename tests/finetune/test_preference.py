"""Preference tuning (DPO through TRL) on a tiny random Llama built here (mechanics, not quality): from a
causal-LM package's adapter, or from a base with new adapters; interrupted and resumed; bad input refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seekforge.core.errors import ConfigError, DataError, TrainingInterrupted
from seekforge.finetune import (
    CausalPackage,
    PreferenceRecipe,
    finetune_causal,
    finetune_preference,
    generate,
    load_finetune_recipe,
)
from tests.conftest import PAIRS, stop_requested_at_once

pytest.importorskip("trl")

ANSWERS = [answer for _, answer in PAIRS]


def _write(folder: Path, name: str, recipe: dict[str, object], rows: list[dict[str, str]]) -> Path:
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / f"{name}.yaml").write_text(json.dumps(recipe))
    return folder / f"{name}.yaml"


def _pairs(shift: int, copies: int = 6) -> list[dict[str, str]]:
    """Each prompt's chosen answer is the colour ``shift`` places along; the rejected one is its own."""
    return [{"prompt": p, "chosen": ANSWERS[(i + shift) % len(ANSWERS)], "rejected": a}
            for i, (p, a) in enumerate(PAIRS)] * copies  # fmt: skip


def _dpo(folder: Path, model: dict[str, object], rows: list[dict[str, str]], **training: object) -> Path:
    recipe = {"task": "preference", "model": model, "data": {"path": "prefs.jsonl", "validation": 0.25},
              "training": {"lr": 0.01, "epochs": 3, "batch_size": 8, "max_length": 32, **training},
              "generation": {"prompts": ["what colour is snow"], "max_new_tokens": 2, "temperature": 0.0}}  # fmt: skip
    return _write(folder, "prefs", recipe, rows)


@pytest.fixture(scope="module")
def sft_package(tiny_llm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama taught each colour (LoRA), as a causal-LM package."""
    folder = tmp_path_factory.mktemp("sft")
    recipe = {"task": "causal_lm", "model": {"base": str(tiny_llm), "rank": 8}, "data": {"path": "sft.jsonl"},
              "training": {"lr": 0.02, "epochs": 4, "batch_size": 8, "max_length": 32}}  # fmt: skip
    path = _write(folder, "sft", recipe, [{"prompt": p, "response": a} for p, a in PAIRS * 8])
    return finetune_causal(load_finetune_recipe(path), runs_dir=folder / "runs").package


def test_dpo_from_a_package_moves_its_adapter_towards_the_chosen_responses(sft_package: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    # the package learned each prompt's own colour; the pairs prefer the next one along
    recipe = load_finetune_recipe(_dpo(tmp_path, {"start": "../" + sft_package.relative_to(tmp_path.parent).as_posix()},
                                       _pairs(shift=1), lr=0.03, epochs=4))  # fmt: skip
    assert isinstance(recipe, PreferenceRecipe) and recipe.model.start == str(sft_package)  # relative to the recipe
    done = finetune_preference(recipe, runs_dir=tmp_path / "runs")
    metrics = done.metrics
    assert metrics["pairs_preferred_before"] <= 0.5 < metrics["pairs_preferred"], metrics
    assert metrics["likelihood_margin"] > metrics["likelihood_margin_before"], metrics
    assert metrics["reward_margin"] > 0 and metrics["reward_accuracy"] > 0.5, metrics
    assert [h["epoch"] for h in done.history] == [1, 2, 3, 4] and done.history[-1]["train_loss"] < 0.6931
    package = CausalPackage(done.package)
    assert package.manifest["preference"]["start"]["package"] == str(sft_package)
    assert package.manifest["model"] == CausalPackage(sft_package).manifest["model"]  # the same base and adapter
    start, tuned = load_file(sft_package / "adapter.safetensors"), load_file(done.package / "adapter.safetensors")
    assert set(start) == set(tuned) and any(not torch.equal(start[k], tuned[k]) for k in start)
    assert "reward margin" in (done.package / "report.html").read_text()
    model, tokenizer = package.load(merge=True)
    assert isinstance(generate(model, tokenizer, "what colour is snow", package.generation), str)


def test_dpo_from_a_base_trains_new_adapters_and_resumes_where_it_stopped(tiny_llm: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    recipe = load_finetune_recipe(_dpo(tmp_path, {"base": str(tiny_llm), "rank": 4}, _pairs(shift=0, copies=3),
                                       epochs=2, batch_size=4))  # fmt: skip
    assert isinstance(recipe, PreferenceRecipe)
    whole = finetune_preference(recipe, runs_dir=tmp_path / "a")
    assert whole.metrics["pairs_preferred"] >= whole.metrics["pairs_preferred_before"]
    assert CausalPackage(whole.package).manifest["preference"]["start"] is None
    with stop_requested_at_once(), pytest.raises(TrainingInterrupted, match="stopped at step 1 of 8"):
        finetune_preference(recipe, runs_dir=tmp_path / "b")
    changed = PreferenceRecipe.model_validate({**recipe.model_dump(), "seed": 1})
    with pytest.raises(ConfigError, match=r"the run to resume started from another recipe \(seed differ"):
        finetune_preference(changed, runs_dir=tmp_path / "b", resume=True)
    resumed = finetune_preference(recipe, runs_dir=tmp_path / "b", resume=True)
    ours, theirs = load_file(resumed.package / "adapter.safetensors"), load_file(whole.package / "adapter.safetensors")
    assert all(torch.allclose(ours[k], theirs[k], atol=1e-5) for k in theirs)


def test_bad_preference_input_is_refused_before_any_work(tiny_llm: Path, sft_package: Path, tmp_path: Path) -> None:
    rows = _pairs(shift=1, copies=1)
    del rows[2]["rejected"]
    recipe = load_finetune_recipe(_dpo(tmp_path, {"base": str(tiny_llm)}, rows))
    with pytest.raises(DataError, match=r"prefs.jsonl line 3: 'rejected' is empty in 1 row"):
        finetune_preference(recipe, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs" / "prefs").exists() or not any((tmp_path / "runs" / "prefs").iterdir())
    renamed = [{"prompt": r["prompt"], "good": r["chosen"], "rejected": r["rejected"]} for r in _pairs(1, 1)]
    recipe = load_finetune_recipe(_dpo(tmp_path, {"base": str(tiny_llm)}, renamed))
    with pytest.raises(DataError, match=r"no field 'chosen'; fields present: 'prompt', 'good', 'rejected'"):
        finetune_preference(recipe, runs_dir=tmp_path / "runs")
    for model, message in [
        ({"start": str(sft_package), "rank": 4}, "rank: the package named in start sets the adapter"),
        ({"start": str(tmp_path)}, "is not a causal-LM package"),
        ({}, "name one of start"),
        ({"base": str(tiny_llm), "target_modules": ["wq"]}, r"'wq' match no layer"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_finetune_recipe(_dpo(tmp_path, model, rows))
