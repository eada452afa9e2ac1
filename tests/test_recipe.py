from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import seekforge
from seekforge.core.errors import ConfigError
from seekforge.models import CNNConfig, MLPConfig
from seekforge.recipe import Recipe, load_recipe
from seekforge.train.config import SGDConfig
from tests.conftest import EXAMPLES, tabular_recipe


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_valid_recipe_resolves_defaults_and_paths(recipe_file: Path) -> None:
    recipe = load_recipe(recipe_file)
    assert isinstance(recipe.model, MLPConfig)
    assert recipe.train.optimizer.type == "adamw"
    assert Path(recipe.data.source).is_absolute() and Path(recipe.data.source).exists()
    assert recipe.task == "classification"
    with pytest.raises(ValueError):
        recipe.seed = 3  # frozen


def test_every_error_reported_at_once_with_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
name: bad
seed: 0
data:
  source: x.csv
  split: {train: 0.8, validation: 0.1, test: 0.3}
features:
  inputs:
    - {name: a, type: numeric, scaler: robust}
  output: {name: y, type: category}
model:
  type: mlp
  hiden: [10]
train:
  lr: -1
  epoch: 3
""",
    )
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    issues = {issue.path: issue for issue in info.value.issues}
    assert set(issues) == {"data.split", "features.inputs.0.scaler", "model.hiden", "train.lr", "train.epoch"}
    assert issues["train.lr"].line == 14 and "greater than 0" in issues["train.lr"].message
    assert "got -1" in issues["train.lr"].message
    assert issues["model.hiden"].suggestion == "hidden" and issues["model.hiden"].line == 12
    assert issues["train.epoch"].suggestion == "epochs"
    assert issues["features.inputs.0.scaler"].line == 8
    assert "must equal 1" in issues["data.split"].message
    text = str(info.value)
    assert "train.lr (" in text and "recipe.yaml:14" in text and "did you mean 'hidden'" in text


def test_a_test_set_is_required() -> None:
    data = tabular_recipe("x.csv")
    data["data"]["split"] = {"train": 0.9, "validation": 0.1, "test": 0.0}
    with pytest.raises(ConfigError, match="there is no test set"):
        load_recipe(data)
    data["data"]["test"] = "y.csv"
    assert load_recipe(data).data.test == "y.csv"


def test_unknown_model_type_lists_choices(tmp_path: Path) -> None:
    data = tabular_recipe("x.csv")
    data["model"] = {"type": "tranformer"}
    with pytest.raises(ConfigError) as info:
        load_recipe(data)
    (issue,) = info.value.issues
    assert issue.path == "model"
    assert "available:" in issue.message and "transformer" in issue.message


def test_model_must_fit_features() -> None:
    data = tabular_recipe("x.csv")
    data["model"] = {"type": "cnn"}
    with pytest.raises(ConfigError, match="takes exactly one image input"):
        load_recipe(data)


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\ndata:\n  source: [unclosed\nmodel: mlp\n")
    with pytest.raises(ConfigError, match=r"recipe\.yaml:\d+:\d+: malformed YAML"):
        load_recipe(path)


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_recipe(write(tmp_path, "- just\n- a list\n"))


def test_overrides_are_validated_again(recipe_file: Path) -> None:
    recipe = load_recipe(recipe_file, overrides=["train.epochs=5", "train.optimizer=sgd", "model.hidden=[8, 4]"])
    assert recipe.train.epochs == 5
    assert isinstance(recipe.train.optimizer, SGDConfig)
    assert recipe.model.hidden == [8, 4]
    with pytest.raises(ConfigError) as info:
        load_recipe(recipe_file, overrides=["train.lr=-3"])
    assert info.value.issues[0].path == "train.lr"
    assert info.value.issues[0].line is None  # the bad value came from --set, not the file
    with pytest.raises(ConfigError, match=r"expected dotted\.key=value"):
        load_recipe(recipe_file, overrides=["train.lr"])


def test_override_of_default_optimizer_keeps_its_type(recipe_file: Path) -> None:
    recipe = load_recipe(recipe_file, overrides=["train.optimizer.weight_decay=0.2"])
    assert recipe.train.optimizer.type == "adamw" and recipe.train.optimizer.weight_decay == 0.2


def test_round_trip_and_fingerprint(recipe_file: Path) -> None:
    recipe = load_recipe(recipe_file)
    again = load_recipe(yaml.safe_load(recipe.to_yaml()))
    assert again == recipe and again.fingerprint() == recipe.fingerprint()
    assert load_recipe(recipe, overrides=["seed=1"]).fingerprint() != recipe.fingerprint()


def test_python_construction_validates_too() -> None:
    data = tabular_recipe("x.csv")
    recipe = Recipe.model_validate(data)
    assert isinstance(recipe.model, MLPConfig)
    assert CNNConfig().type == "cnn"


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_validates_with_its_data(example: str) -> None:
    from seekforge.data import check_table, read_source

    recipe = load_recipe(EXAMPLES / example)
    assert recipe.name == example.removesuffix(".yaml")
    assert load_recipe(yaml.safe_load(recipe.to_yaml())) == recipe  # the resolved recipe reloads as it is
    for source in filter(None, (recipe.data.source, recipe.data.test)):
        assert len(check_table(read_source(source), recipe.features)) > 100


def test_there_is_an_example_per_builtin_dataset() -> None:
    from seekforge.datasets import DATASETS

    assert {p.stem for p in EXAMPLES.glob("*.yaml")} == set(DATASETS.names())


@pytest.mark.parametrize("template", ["tabular", "regression", "image", "text"])
def test_every_template_validates(template: str) -> None:
    from importlib import resources

    text = resources.files("seekforge").joinpath("templates", f"{template}.yaml").read_text()
    load_recipe(yaml.safe_load(text))


def test_seed_has_an_upper_bound() -> None:
    with pytest.raises(ConfigError, match="seed"):
        load_recipe(tabular_recipe("x.csv") | {"seed": 2**32})


def test_early_stopping_monitor_and_validation_are_checked(tmp_path: Path) -> None:
    data = tabular_recipe("x.csv", early_stopping={"monitor": "val_acc"})
    data["data"]["split"] = {"train": 0.8, "validation": 0.0, "test": 0.2}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    issues = {i.path: i for i in info.value.issues}
    assert "val_accuracy" in issues["train.early_stopping.monitor"].message
    assert issues["train.early_stopping.monitor"].line is not None
    assert "needs a validation split" in issues["train.early_stopping"].message
    ok = tabular_recipe("x.csv", early_stopping={"monitor": "val_roc_auc"})
    assert load_recipe(ok).train.early_stopping.monitor == "val_roc_auc"  # binary output: AUC is recorded


def test_cross_section_error_keeps_its_line_under_overrides(tmp_path: Path) -> None:
    data = tabular_recipe("x.csv")
    data["model"] = {"type": "cnn"}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        load_recipe(path, overrides=["train.epochs=2"])
    (issue,) = info.value.issues
    assert issue.path == "model" and issue.line is not None and "--set" not in issue.message


def test_unknown_encoding_is_a_config_error() -> None:
    data = tabular_recipe("x.csv")
    data["data"]["read"] = {"encoding": "utf8x"}
    with pytest.raises(ConfigError, match="unknown text encoding 'utf8x'"):
        load_recipe(data)


def test_balance_fits_the_task_and_the_features() -> None:
    def problems(balance: dict[str, object], **changes: object) -> str:
        data = tabular_recipe("x.csv", **changes.pop("train", {}))  # type: ignore[arg-type]
        data["data"]["balance"] = balance
        data["features"].update(changes)
        with pytest.raises(ConfigError) as info:
            load_recipe(data)
        return str(info.value)

    regression = {"output": {"name": "score", "type": "numeric"}}
    assert "output is numeric (regression)" in problems({"method": "smote"}, **regression)
    text = {"inputs": [{"name": "note", "type": "text"}], "output": {"name": "label", "type": "binary"}}
    assert "SMOTE cannot make up note (text)" in problems({"method": "smote"}, **text)
    both = problems({"method": "class_weights"}, train={"class_weights": "balanced"})
    assert "keep one of them" in both
    ok = tabular_recipe("x.csv")
    ok["data"]["balance"] = {"method": "smote", "ratio": 0.8}
    assert load_recipe(ok).data.balance.ratio == 0.8


def _mixed(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(rows)],
        "age": rng.integers(18, 80, rows),
        "income": rng.normal(50_000, 15_000, rows).round(2),
        "plan": rng.choice(["basic", "pro", "team"], rows),
        "active": rng.choice(["yes", "no"], rows),
        "signup": pd.date_range("2024-01-01", periods=rows, freq="D").astype(str),
        "country": "NO",
        "note": [" ".join(rng.choice(["good", "slow", "billing", "great", "support", "fast"], 6)) for _ in range(rows)],
    })  # fmt: skip
    frame["churn"] = np.where((frame["age"] < 40) ^ (frame["plan"] == "basic"), "left", "stayed")
    return frame


def test_a_drafted_recipe_types_every_column_and_says_what_it_left_out(tmp_path: Path) -> None:
    from seekforge.recipe import draft_recipe

    _mixed().to_csv(tmp_path / "customers.csv", index=False)
    text = draft_recipe(tmp_path / "customers.csv", "churn", written_to=tmp_path / "sub" / "recipe.yaml")
    recipe = yaml.safe_load(text)
    assert [(f["name"], f["type"]) for f in recipe["features"]["inputs"]] == [
        ("age", "numeric"), ("income", "numeric"), ("plan", "category"), ("active", "binary"), ("note", "text")
    ]  # fmt: skip
    assert recipe["features"]["output"] == {"name": "churn", "type": "binary"}
    assert recipe["data"]["source"] == "../customers.csv"
    assert recipe["model"] == {"type": "fusion", "combiner": {"type": "concat"},
                               "encoders": {"tabular": {"type": "mlp", "hidden": [64, 32]}}}  # fmt: skip
    comments = [line for line in text.splitlines() if line.startswith("# left out")]
    assert [c.split("'")[1] for c in comments] == ["customer_id", "signup", "country"]
    assert "an identifier" in comments[0] and "timestamp" in comments[1] and "constant" in comments[2]


def test_the_draft_infers_regression_and_picks_the_model_for_the_inputs(tmp_path: Path) -> None:
    from seekforge.recipe import draft_recipe

    frame = _mixed()
    frame["spend"] = frame["income"] / 100
    frame.to_csv(tmp_path / "spend.csv", index=False)
    recipe = yaml.safe_load(draft_recipe(tmp_path / "spend.csv", "spend"))
    assert recipe["features"]["output"] == {"name": "spend", "type": "numeric"}
    frame.drop(columns="note").to_csv(tmp_path / "table.csv", index=False)
    assert yaml.safe_load(draft_recipe(tmp_path / "table.csv", "churn"))["model"]["type"] == "mlp"
    frame[["note", "churn"]].to_csv(tmp_path / "texts.csv", index=False)
    recipe = yaml.safe_load(draft_recipe(tmp_path / "texts.csv", "churn"))
    assert recipe["model"]["type"] == "transformer" and recipe["features"]["inputs"] == [
        {"name": "note", "type": "text"}
    ]
    with pytest.raises(ConfigError, match="--task must be classification or regression"):
        draft_recipe(tmp_path / "spend.csv", "spend", task="ranking")


def test_init_from_data_writes_a_recipe_that_runs(tmp_path: Path) -> None:
    from tests.integration.cli import seekforge

    _mixed().to_csv(tmp_path / "customers.csv", index=False)
    seekforge("init", "--from", "customers.csv", "--label", "churn", "-o", "recipe.yaml", cwd=tmp_path, check=True)
    done = seekforge("run", "recipe.yaml", "--set", "train.epochs=4", cwd=tmp_path, check=True)
    assert "package:" in done.stdout + done.stderr
    refused = seekforge("init", "--from", "customers.csv", cwd=tmp_path)
    assert refused.returncode == 2 and "--from needs --label" in refused.stderr


def test_run_takes_a_data_frame_saved_once_by_its_content(tmp_path: Path) -> None:
    from seekforge.recipe import draft_recipe

    frame = _mixed()
    frame.to_csv(tmp_path / "customers.csv", index=False)
    recipe = yaml.safe_load(draft_recipe(tmp_path / "customers.csv", "churn"))
    recipe["data"].pop("source")
    recipe["train"]["epochs"] = 2
    first = seekforge.run(recipe, data=frame, runs_dir=tmp_path / "runs")
    second = seekforge.run(recipe, data=frame.copy(), runs_dir=tmp_path / "runs")
    assert len(list((tmp_path / "runs" / "frames").iterdir())) == 1
    assert first.metrics == second.metrics
    with pytest.raises(ConfigError, match="data must be a pandas DataFrame"):
        seekforge.run(recipe, data=[1, 2], runs_dir=tmp_path / "runs")  # type: ignore[arg-type]


def test_the_draft_takes_lists_per_row_as_sequences_and_a_mix_as_a_fusion_model(tmp_path: Path) -> None:
    from seekforge.data._profile import profile_frame
    from seekforge.recipe import draft_recipe

    frame = _mixed(60)[["age", "churn"]]
    frame["clicks"] = [["home", "cart"][: i % 3] for i in range(60)]  # JSON Lines keeps the lists
    frame["meta"] = [{"a": i} for i in range(60)]  # an object per row stays out
    frame.to_json(tmp_path / "c.jsonl", orient="records", lines=True)
    text = draft_recipe(tmp_path / "c.jsonl", "churn")
    recipe = yaml.safe_load(text)
    assert ("clicks", "sequence") in [(f["name"], f["type"]) for f in recipe["features"]["inputs"]]
    assert recipe["model"]["type"] == "fusion" and "left out 'meta'" in text
    profile = profile_frame(pd.read_json(tmp_path / "c.jsonl", lines=True), label="churn")
    clicks = profile["columns"]["clicks"]
    assert clicks["type"] == "sequence" and clicks["items"] == "tokens" and clicks["empty"] == 20
    assert clicks["lengths"]["max"] == 2.0 and clicks["top"][0] == ["home", 40]
