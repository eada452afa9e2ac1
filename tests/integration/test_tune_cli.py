"""`seekforge tune` end to end: a study killed mid-trial resumes with no trial lost or run twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.conftest import make_tabular, tabular_recipe
from tests.integration.cli import assert_user_error, seekforge


def test_a_killed_study_resumes_without_losing_or_repeating_trials(tmp_path: Path) -> None:
    make_tabular(1500).to_csv(tmp_path / "d.csv", index=False)
    recipe = tabular_recipe("d.csv", epochs=30)
    recipe["tune"] = {
        "trials": 5,
        "pruner": "none",
        "search_space": {"train.lr": {"suggest": "float", "low": 1e-3, "high": 0.1, "log": True}},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert_user_error(seekforge("tune", "r.yaml", "--resume", cwd=tmp_path), "nothing to resume")
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "seekforge", "tune", "r.yaml"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("runs/tiny/tune-*/trials/0001/metrics.jsonl")):
        assert proc.poll() is None and time.monotonic() < deadline, "the study never reached its second trial"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-trial: trial 1 is left RUNNING
    proc.wait()
    changed = seekforge("tune", "r.yaml", "--resume", "--set", "train.epochs=3", cwd=tmp_path)
    assert_user_error(changed, "holds a study of a different recipe or search space")
    done = seekforge("tune", "r.yaml", "--resume", "--trials", "5", cwd=tmp_path, check=True)
    assert "retrying 1 interrupted trial" in done.stderr
    summary = json.loads(next(tmp_path.glob("runs/tiny/tune-*/study.json")).read_text())
    trials = {t["number"]: t for t in summary["trials"]}
    assert trials[1]["state"] == "FAIL" and trials[1]["user_attrs"]["failed"] == "its worker stopped"
    retries = [t for t in trials.values() if t["user_attrs"].get("retry_of") == 1]
    assert len(retries) == 1 and retries[0]["state"] == "COMPLETE"
    assert retries[0]["params"] == trials[1]["params"]  # the same values, trained once more
    complete = [t for t in trials.values() if t["state"] == "COMPLETE"]
    assert len(complete) == 5 and summary["counts"]["RUNNING"] == 0
    assert len({t["params"]["train.lr"] for t in complete}) == 5  # no trial ran twice


def test_objectives_on_the_command_line_give_a_pareto_front(tmp_path: Path) -> None:
    make_tabular(300).to_csv(tmp_path / "d.csv", index=False)
    recipe = tabular_recipe("d.csv", epochs=3)
    recipe["tune"] = {"trials": 3, "search_space": {"train.lr": {"suggest": "float", "low": 1e-3, "high": 0.1}}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    proc = seekforge("tune", "r.yaml", "--objectives", "accuracy,parameters", "--json", cwd=tmp_path, check=True)
    result = json.loads(proc.stdout)
    log = proc.stderr.splitlines()  # piped: each epoch line names its trial, and the study reports after each
    assert {f"trial {n}  epoch 1" for n in range(3)} <= {line[: len("trial 0  epoch 1")] for line in log}
    assert any(line.startswith("study 3/3 trials: trial 2 done; Pareto front of") for line in log), log
    assert any(line.startswith("study 1/3 trials: trial 0 done;") and ", eta " in line for line in log), log
    assert set(result["best"]["values"]) == {"val_accuracy", "parameters"} and len(result["trials"]) == 3
    assert (tmp_path / result["package"]).is_dir()
    summary = json.loads(next(tmp_path.glob("runs/tiny/tune-*/study.json")).read_text())
    assert summary["objectives"] == ["val_accuracy", "parameters"] and summary["pruner"] == "none"
    assert summary["pareto"]
    bad = seekforge("tune", "r.yaml", "--objectives", "accuracy,speed", cwd=tmp_path)
    assert_user_error(bad, "tune.objectives")
