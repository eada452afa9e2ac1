from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from seekforge.core.errors import ConfigError
from seekforge.recipe import load_recipe
from seekforge.serve import load
from seekforge.tune import run_study
from tests.conftest import fusion_recipe, make_fusion, make_tabular, tabular_recipe

SPACE = {
    "search_space": {"train.lr": {"suggest": "float", "low": 1e-4, "high": 0.3, "log": True}},
    "models": [{"type": "mlp", "hidden": {"suggest": "categorical", "choices": [[4], [32, 16]]},
                "dropout": {"suggest": "float", "low": 0.0, "high": 0.3}}],
}  # fmt: skip


@pytest.fixture
def recipe(tmp_path: Path) -> dict[str, object]:
    make_tabular(300).to_csv(tmp_path / "d.csv", index=False)
    data = tabular_recipe(str(tmp_path / "d.csv"), epochs=6)
    data["tune"] = {**SPACE, "trials": 8}
    return data


def test_a_study_prunes_and_packages_its_best_trial(tmp_path: Path, recipe: dict[str, object]) -> None:
    result = run_study(recipe, runs_dir=tmp_path / "runs")
    summary = json.loads((result.study_dir / "study.json").read_text())
    states = [t["state"] for t in summary["trials"]]
    assert len(states) == 8 and set(states) <= {"COMPLETE", "PRUNED"} and "PRUNED" in states
    pruned = [t for t in summary["trials"] if t["state"] == "PRUNED"]
    assert all(t["user_attrs"]["epochs"] < 6 for t in pruned)  # stopped early by successive halving
    assert summary["epochs_trained"] == sum(t["user_attrs"]["epochs"] for t in summary["trials"]) < 8 * 6
    best = summary["best"]
    assert best["values"]["val_accuracy"] == max(t["values"]["val_accuracy"] for t in summary["trials"] if t["values"])
    best_recipe = load_recipe(result.best_recipe)
    assert best_recipe.tune is None and best_recipe.train.lr == pytest.approx(best["params"]["train.lr"])
    predictor = load(result.package)
    assert predictor.predict(make_tabular(5, seed=3)).shape[0] == 5
    report = (result.study_dir / "report.html").read_text()
    assert report.startswith("<!DOCTYPE html>") and "Intermediate values" in report and ">pruned</text>" in report
    complete = sum(state == "COMPLETE" for state in states)  # history: 2 lines; each trial's checks; each complete
    assert "Parallel coordinates" in report and report.count("<polyline") == 2 + 8 + complete  # trial's parameters
    assert len(list((result.study_dir / "data").iterdir())) == 1  # the data was prepared once
    import optuna

    journal = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(result.study_dir / "study.journal"))
    )
    (name,) = optuna.get_all_study_names(journal)
    assert optuna.load_study(study_name=name, storage=journal).metric_names == ["val_accuracy"]  # for the dashboard


def test_equal_metrics_go_to_the_lower_validation_loss(tmp_path: Path, recipe: dict[str, object]) -> None:
    import optuna

    from seekforge.tune._report import summarize

    study = optuna.create_study(direction="maximize")
    dist = {"train.lr": optuna.distributions.FloatDistribution(1e-4, 0.3, log=True)}
    for lr, value, loss in ((0.01, 1.0, 0.30), (0.02, 1.0, 0.12), (0.03, 0.9, 0.05), (0.04, 1.0, 0.20)):
        study.add_trial(optuna.trial.create_trial(params={"train.lr": lr}, distributions=dist, value=value,
                                                  user_attrs={"val_loss": loss}))  # fmt: skip
    best = summarize(study, load_recipe(recipe))["best"]
    assert best["number"] == 1 and best["tie_break"] == "3 trials tied on val_accuracy: the lowest val_loss won"


def test_checks_within_an_epoch_let_the_pruner_stop_a_trial_partway(tmp_path: Path, recipe: dict[str, object]) -> None:
    recipe["tune"] = {**SPACE, "trials": 8, "checks_per_epoch": 2}  # type: ignore[dict-item]
    result = run_study(recipe, runs_dir=tmp_path / "runs")
    summary = json.loads((result.study_dir / "study.json").read_text())
    pruned = [t["user_attrs"]["epochs"] for t in summary["trials"] if t["state"] == "PRUNED"]
    # successive halving's rungs at checks 1, 3 and 9 (of 12): halfway through epochs 1, 2 and 5
    assert pruned and set(pruned) <= {0.5, 1.5, 4.5} and 0.5 in pruned
    complete = [t["user_attrs"]["epochs"] for t in summary["trials"] if t["state"] == "COMPLETE"]
    assert set(complete) == {6}
    assert summary["epochs_trained"] == sum(pruned) + sum(complete)


@pytest.mark.parametrize(
    "tune",
    [{"checks_per_epoch": 0}, {"checks_per_epoch": 2, "pruner": "none"},
     {"checks_per_epoch": 2, "metric": "train_loss", "direction": "minimize"}],
)  # fmt: skip
def test_checks_per_epoch_is_validated(recipe: dict[str, object], tune: dict[str, object]) -> None:
    recipe["tune"] = {**SPACE, **tune}  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="checks_per_epoch"):
        load_recipe(recipe)


def test_two_objectives_give_a_pareto_front(tmp_path: Path, recipe: dict[str, object]) -> None:
    recipe["tune"] = {**SPACE, "trials": 6, "objectives": ["parameters"], "pruner": "none", "sampler": "random"}
    result = run_study(recipe, runs_dir=tmp_path / "runs")
    summary = json.loads((result.study_dir / "study.json").read_text())
    front = [t for t in summary["trials"] if t["number"] in summary["pareto"]]
    assert front and all("parameters" in t["values"] for t in front)
    for t in front:  # nothing on the front is beaten on both objectives
        assert not any(
            o["values"]["val_accuracy"] >= t["values"]["val_accuracy"]
            and o["values"]["parameters"] < t["values"]["parameters"]
            for o in summary["trials"]
            if o["values"]
        )


def test_two_workers_share_one_study_without_losing_or_repeating_a_trial(
    tmp_path: Path, recipe: dict[str, object]
) -> None:
    recipe["tune"] = {**SPACE, "trials": 10, "workers": 2, "pruner": "none"}
    result = run_study(recipe, runs_dir=tmp_path / "runs")
    trials = result.trials
    numbers = [t["number"] for t in trials]
    assert numbers == list(range(len(trials))) and len(trials) >= 10
    assert all(t["state"] == "COMPLETE" for t in trials)
    workers = {t["user_attrs"]["worker"] for t in trials}
    assert len(workers) == 2  # both processes ran trials
    assert len({t["params"]["train.lr"] for t in trials}) == len(trials)  # each drew its own values
    folders = sorted(p.name for p in (result.study_dir / "trials").iterdir())
    assert folders == [f"{n:04d}" for n in numbers]  # each trial trained once, in its own folder
    for n in numbers:
        lines = (result.study_dir / "trials" / f"{n:04d}" / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 7))


@pytest.fixture
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server of its own (a fresh cluster on a Unix socket), and the URL of an empty database."""
    import shutil
    import socket
    import subprocess

    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    pytest.importorskip("psycopg")
    import psycopg

    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []  # the server refuses to run as root
    # in /tmp itself: the user the server runs as must reach the folder
    root = Path(tempfile.mkdtemp(prefix="seekforge-pg-")) if as_user else tmp_path_factory.mktemp("pg")
    if as_user:
        os.chown(root, 65534, 65534)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run([*as_user, initdb, "-D", str(root / "data"), "-A", "trust", "-U", "seek"], check=True,
                   capture_output=True)  # fmt: skip
    options = f"-p {port} -k {root} -c listen_addresses=''"
    subprocess.run([*as_user, pg_ctl, "-D", str(root / "data"), "-o", options, "-l", str(root / "log"), "-w", "start"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        with psycopg.connect(f"host={root} port={port} user=seek dbname=postgres", autocommit=True) as db:
            db.execute("CREATE DATABASE study")
        yield f"postgresql://seek@/study?host={root}&port={port}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(root / "data"), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_workers_on_two_hosts_share_one_postgresql_study(
    tmp_path: Path, recipe: dict[str, object], postgres: str
) -> None:
    """Two `seekforge tune --storage` processes with folders of their own, as on two hosts, join one study."""
    import subprocess
    import sys

    import yaml

    recipe["tune"] = {**SPACE, "trials": 8, "pruner": "none"}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1", "PYTHONWARNINGS": "ignore"}
    hosts = [
        subprocess.Popen(
            [sys.executable, "-m", "seekforge", "tune", "r.yaml", "--storage", postgres, "--runs-dir", f"host{i}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in (1, 2)
    ]
    for host in hosts:
        _, err = host.communicate(timeout=600)
        assert host.returncode == 0, err.decode()[-2000:]
    summaries = [json.loads(next(tmp_path.glob(f"host{i}/tiny/tune-*/study.json")).read_text()) for i in (1, 2)]
    assert summaries[0]["trials"] == summaries[1]["trials"]  # each host concluded from the whole study
    trials = summaries[1]["trials"]
    numbers = [t["number"] for t in trials]
    assert numbers == list(range(len(trials))) and len(trials) >= 8
    assert all(t["state"] == "COMPLETE" for t in trials)
    ran = [{int(p.parent.name) for p in tmp_path.glob(f"host{i}/tiny/tune-*/trials/*/metrics.jsonl")} for i in (1, 2)]
    best = summaries[1]["best"]["number"]
    assert summaries[0]["best"]["number"] == best
    assert ran[0] and ran[1] and ran[0] | ran[1] == set(numbers)  # both hosts trained, every trial ran
    assert ran[0] & ran[1] <= {best}  # only the best trial is trained twice: for the other host's package


def test_the_example_search_runs(tmp_path: Path) -> None:
    from tests.conftest import EXAMPLES

    path = EXAMPLES / "tune" / "breast_cancer_search.yaml"
    recipe = load_recipe(path)
    assert recipe.tune is not None and recipe.tune.metric == "val_roc_auc"
    result = run_study(path, overrides=["tune.trials=3", "train.epochs=3"], runs_dir=tmp_path)
    assert result.package.is_dir() and result.best["values"]["val_roc_auc"] > 0.9


@pytest.mark.parametrize(
    ("name", "kind"),
    [("hyperband", "HyperbandPruner"), ("successive_halving", "SuccessiveHalvingPruner"),
     ("median", "MedianPruner"), ("none", "NopPruner")],
)  # fmt: skip
def test_each_pruner_name_makes_its_optuna_pruner(name: str, kind: str) -> None:
    import optuna

    from seekforge.tune._storage import _pruner

    assert type(_pruner(optuna, name, 10)).__name__ == kind


def test_a_fusion_study_searches_encoders_and_the_combiner(tmp_path: Path) -> None:
    source = make_fusion(tmp_path, rows=120)
    recipe = fusion_recipe(str(source))
    recipe["train"] = {"epochs": 2, "batch_size": 16, "lr": 0.01}
    combiners = [{"type": "concat"}, {"type": "cross_attention", "layers": 1, "heads": 2, "dim": 16}]
    texts = [{"type": "bag", "dim": 8}, {"type": "transformer", "hidden": 16, "layers": 1, "heads": 2}]
    recipe["tune"] = {"trials": 4, "pruner": "none", "search_space": {
        "model.combiner": {"suggest": "categorical", "choices": combiners},
        "model.encoders.sequence.type": {"suggest": "categorical", "choices": ["gru", "lstm", "conv1d"]},
        "model.encoders.text": {"suggest": "categorical", "choices": texts},
    }}  # fmt: skip
    result = run_study(recipe, runs_dir=tmp_path / "runs")
    summary = json.loads((result.study_dir / "study.json").read_text())
    assert [t["state"] for t in summary["trials"]] == ["COMPLETE"] * 4
    drawn = {(t["params"]["model.combiner"], t["params"]["model.encoders.sequence.type"]) for t in summary["trials"]}
    assert len(drawn) > 1
    best = summary["best"]["params"]
    config = json.loads((result.package / "model.json").read_text())["config"]
    assert json.loads(best["model.combiner"]).items() <= config["combiner"].items()
    assert config["encoders"]["sequence"]["type"] == best["model.encoders.sequence.type"]
    assert config["encoders"]["text"]["type"] == json.loads(best["model.encoders.text"])["type"]
    assert config["encoders"]["clicks"]["type"] == "conv1d"  # an input's own encoder is not the kind's
