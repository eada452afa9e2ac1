"""Studies in the studio: trials, best value and history read from Optuna's journal without writing to
it; an unreachable storage is shown, not raised; a study in progress under two workers is read throughout."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import yaml

optuna = pytest.importorskip("optuna")
pytest.importorskip("fastapi")
from seekforge.studio import create_app  # noqa: E402
from tests.conftest import make_tabular, tabular_recipe  # noqa: E402
from tests.studio.client import studio_client  # noqa: E402


def write_study(root: Path, name: str, stamp: str, *, trials: int, storage: str | None = None) -> Path:
    """A study folder as ``seekforge tune`` leaves it: a recipe with a tune section and the Optuna journal of
    ``trials`` trials (every fifth pruned after two reports, the rest complete)."""
    folder = root / name / stamp
    folder.mkdir(parents=True)
    tune = {"metric": "val_accuracy", "trials": trials, **({"storage": storage} if storage else {})}
    (folder / "recipe.yaml").write_text(yaml.safe_dump({"name": name, "tune": tune}))
    if storage:
        return folder
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / "study.journal")))
    study = optuna.create_study(storage=journal, study_name=f"{name}-0123456789ab", direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))  # fmt: skip
    for number in range(trials):
        trial = study.ask()
        lr = trial.suggest_float("train.lr", 1e-4, 0.1, log=True)
        trial.suggest_categorical("model.activation", ["relu", "gelu"])  # no bearing on the value
        trial.set_user_attr("epochs", 3)
        for step in range(3):
            trial.report(0.5 + lr * (step + 1), step)
            if number % 5 == 4 and step == 1:
                break
        if number % 5 == 4:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, 0.5 + lr * 3)
    old = time.time() - 3600  # an hour quiet: stopped, as no study.json says it finished
    os.utime(folder / "study.journal", (old, old))
    return folder


def test_a_study_shows_its_trials_best_value_and_history_without_writing(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    folder = write_study(root, "tiny", "tune-20260101-000000", trials=30)
    journal = folder / "study.journal"
    before = (journal.read_bytes(), journal.stat().st_mtime_ns)
    client = studio_client(create_app(root))
    (listed,) = client.get("/api/studies").json()["studies"]
    assert listed["trials"] == 30 and listed["states"] == {"COMPLETE": 24, "PRUNED": 6}
    assert listed["direction"] == "maximize" and listed["metric"] == "val_accuracy" and listed["status"] == "stopped"
    study = optuna.load_study(study_name="tiny-0123456789ab", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))))  # fmt: skip
    assert listed["best"]["number"] == study.best_trial.number and listed["best"]["value"] == study.best_value
    best_first = client.get("/api/studies/tiny/tune-20260101-000000", params={"sort": "value", "limit": 3}).json()
    assert best_first["total"] == 30 and best_first["trials"][0]["value"] == study.best_value
    assert [t["value"] for t in best_first["trials"]] == sorted(
        (t["value"] for t in best_first["trials"]), reverse=True
    )
    pruned = [t for t in client.get("/api/studies/tiny/tune-20260101-000000", params={"limit": 30}).json()["trials"]
              if t["state"] == "PRUNED"]  # fmt: skip
    assert len(pruned) == 6 and all(len(t["intermediate"]) == 2 for t in pruned)
    history = client.get("/api/studies/tiny/tune-20260101-000000/history", params={"points": 5}).json()
    assert history["best"] == sorted(history["best"]) and history["best"][-1] == study.best_value
    assert history["value"][history["number"].index(study.best_trial.number)] == study.best_value  # kept
    page = client.get("/studies/tiny/tune-20260101-000000", params={"limit": 10}).text
    assert page.count("<tr data-trial=") == 10 and "1–10 of 30" in page and "next →" in page
    assert "tiny" in client.get("/studies").text
    assert (journal.read_bytes(), journal.stat().st_mtime_ns) == before  # read, never written
    assert not list(folder.glob("*.lock"))


def test_parameter_importance_and_parallel_coordinates_follow_the_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seekforge.tune import _importance

    root = tmp_path / "runs"
    folder = write_study(root, "tiny", "tune-20260101-000000", trials=30)
    client = studio_client(create_app(root))
    study = optuna.load_study(study_name="tiny-0123456789ab", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / "study.journal"))))  # fmt: skip
    found = client.get("/api/studies/tiny/tune-20260101-000000/importance").json()
    expected = optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
    )
    assert (
        found["trials"] == 24 and found["method"] == "fANOVA" and found["importance"] == pytest.approx(dict(expected))
    )
    assert found["importance"]["train.lr"] > 0.9 > found["importance"]["model.activation"]  # the value follows lr only
    monkeypatch.setattr(_importance, "FANOVA_TRIALS", 10)  # a large study: PED-ANOVA
    fast = studio_client(create_app(root)).get("/api/studies/tiny/tune-20260101-000000/importance").json()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ped = optuna.importance.get_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    assert fast["method"] == "PED-ANOVA" and fast["importance"] == pytest.approx(dict(ped))
    shown = client.get("/api/studies/tiny/tune-20260101-000000/parameters", params={"limit": 10}).json()
    assert shown["axes"] == ["train.lr", "model.activation", "value"] and shown["complete"] == 24
    assert len(shown["numbers"]) == 10 and study.best_trial.number in shown["numbers"]  # the best tenth kept
    lrs = [study.trials[n].params["train.lr"] for n in shown["numbers"]]
    low, high = min(lrs), max(lrs)  # more than two decades apart: log-spaced
    assert shown["positions"][0] == pytest.approx([math.log10(v / low) / math.log10(high / low) for v in lrs])
    assert [label for _, label in shown["labels"][1]] == ["gelu", "relu"]
    kinds = [study.trials[n].params["model.activation"] for n in shown["numbers"]]
    assert shown["positions"][1] == [0.0 if k == "gelu" else 1.0 for k in kinds]
    assert shown["values"] == [study.trials[n].value for n in shown["numbers"]]


def test_an_unreachable_storage_is_shown_not_raised(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_study(root, "far", "tune-20260101-000000", trials=0, storage="postgresql+psycopg://u:p@127.0.0.1:1/none")
    client = studio_client(create_app(root), raise_server_exceptions=False)
    (listed,) = client.get("/api/studies").json()["studies"]
    assert listed["status"] == "unreachable" and listed["problem"]
    assert client.get("/studies/far/tune-20260101-000000").status_code == 200
    for route in ("history", "parameters", "importance"):
        assert client.get(f"/api/studies/far/tune-20260101-000000/{route}").status_code == 503
    assert client.get("/studies").status_code == 200
    assert client.get("/api/studies/far/tune-x").status_code == 404
    assert client.get("/api/runs").json()["total"] == 0  # a study's folder is not a run


def test_the_studio_reads_a_two_worker_study_while_it_runs(tmp_path: Path) -> None:
    make_tabular(400).to_csv(tmp_path / "d.csv", index=False)
    recipe = tabular_recipe("d.csv", epochs=3)
    recipe["tune"] = {"trials": 8, "workers": 2, "pruner": "none",
                      "search_space": {"train.lr": {"suggest": "float", "low": 1e-3, "high": 0.1, "log": True}}}  # fmt: skip
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "seekforge", "tune", "r.yaml"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    client = studio_client(create_app(tmp_path / "runs"))
    seen: list[int] = []
    deadline = time.monotonic() + 240
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            studies = client.get("/api/studies").json()["studies"]
            if studies:
                assert studies[0]["status"] != "unreachable", studies[0]["problem"]
                seen.append(studies[0]["trials"])
                assert client.get(f"/api/studies/{studies[0]['id']}", params={"sort": "value"}).status_code == 200
            time.sleep(0.1)
    finally:
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "lock" not in err.lower() and "database is locked" not in err
    final = client.get("/api/studies").json()["studies"][0]
    assert final["status"] == "finished" and final["states"] == {"COMPLETE": 8}
    assert len(set(seen)) > 1 and seen == sorted(seen)  # watched it grow, never shrink
