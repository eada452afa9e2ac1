from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seekforge.core.errors import DataError
from seekforge.core.prediction_log import LogEntry, PredictionLog
from seekforge.core.variants import model_version
from seekforge.monitor import MonitorConfig, monitor_package
from seekforge.serve import load
from tests.conftest import make_tabular, text_recipe
from tests.integration.cli import seekforge

HOUR = 3600.0
NOW = 1_800_000_000.0


def log_rows(path: Path, package: Path, frames: list[tuple[float, pd.DataFrame]], version: str | None = None) -> None:
    """Log each frame's rows (predicted by the package) as one request each, at the given times."""
    predictor = load(package)
    manifest = predictor.manifest
    log = PredictionLog(path, package=str(package), model_version=version or model_version(manifest), backend="torch")
    classes = predictor.classes
    for ts, frame in frames:
        inputs = frame[[f["name"] for f in manifest["inputs"]]].to_dict("records")
        predicted = predictor.predict(inputs)
        for i, row in enumerate(inputs):
            output = {
                "prediction": predicted["prediction"][i],
                "proba": {c: float(predicted[f"proba_{c}"][i]) for c in classes},
            }
            log.append(LogEntry(ts + i * 0.01, f"r{int(ts)}-{i}", 1.0, [row], [output]))
    log.close()


def shifted(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["x1"] = out["x1"] + 3.0
    out["city"] = "lima"
    return out


@pytest.fixture(scope="module")
def logged(served_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("monitor") / "predictions.db"
    steady = make_tabular(600, seed=1)
    log_rows(
        path,
        served_package,
        [
            (NOW - 3 * HOUR, steady),
            (NOW - 2 * HOUR, make_tabular(600, seed=2)),
            (NOW - HOUR, shifted(make_tabular(600, seed=3))),
        ],
    )
    log_rows(path, served_package, [(NOW - HOUR, make_tabular(50, seed=4))], version="another:model")
    return path


def test_windows_find_the_shift_in_the_latest_hour_only(served_package: Path, logged: Path, tmp_path: Path) -> None:
    result = monitor_package(
        served_package, logged, window_seconds=HOUR, windows=3, now=NOW, output=tmp_path / "report"
    )
    assert [w.drift.rows for w in result.windows] == [600, 600, 600]
    assert [w.drift.drift for w in result.windows] == [False, False, True]
    assert set(result.current.drift.drifted_features) == {"x1", "city"}
    assert result.other_versions == 50
    written = json.loads((tmp_path / "report" / "monitor.json").read_text())
    assert written["drift"] is True and len(written["windows"]) == 3
    html = (tmp_path / "report" / "monitor.html").read_text()
    assert "DRIFT" in html and "x1" in html


def test_thresholds_come_from_the_config(served_package: Path, logged: Path) -> None:
    lenient = MonitorConfig(psi_threshold=100.0, drift_share=0.9)
    assert not monitor_package(served_package, logged, window_seconds=HOUR, now=NOW, config=lenient).drift


def test_a_window_with_too_few_rows_is_not_called_drift(served_package: Path, logged: Path) -> None:
    result = monitor_package(served_package, logged, window_seconds=HOUR, now=NOW + 10 * HOUR)
    assert result.current.drift.rows == 0 and not result.current.drift.enough_data and not result.drift


def test_labels_join_by_request_and_give_live_metrics(served_package: Path, logged: Path, tmp_path: Path) -> None:
    truth = make_tabular(600, seed=2)
    labels = pd.DataFrame({"request_id": [f"r{int(NOW - 2 * HOUR)}-{i}" for i in range(600)], "label": truth["label"]})
    labels.iloc[:300].to_csv(tmp_path / "labels.csv", index=False)  # half the labels have arrived
    result = monitor_package(
        served_package, logged, window_seconds=HOUR, windows=2, now=NOW - HOUR, labels=tmp_path / "labels.csv"
    )
    window = result.current
    assert window.labelled == 300
    predicted = load(served_package).predict(truth.iloc[:300])["prediction"].to_numpy()
    assert window.live_metrics["accuracy"] == pytest.approx(
        float(np.mean(predicted == truth["label"].iloc[:300].to_numpy()))
    )
    labels["label"] = "maybe"
    labels.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match="'maybe' is not one of the model's classes"):
        monitor_package(served_package, logged, window_seconds=HOUR, now=NOW - HOUR, labels=tmp_path / "bad.csv")


def test_cli_exits_1_on_drift_0_without_and_2_on_bad_input(served_package: Path, logged: Path, tmp_path: Path) -> None:
    steady = tmp_path / "steady.db"
    log_rows(steady, served_package, [(time.time() - 60, make_tabular(600, seed=5))])
    fire = f"{sys.executable} -c \"import os; open('fired.txt', 'w').write(os.environ['SEEKFORGE_DRIFTED'])\""
    calm = seekforge("monitor", str(served_package), "--log", str(steady), "--window", "1h", "-o", str(tmp_path / "b"),
                     "--on-drift", fire, cwd=tmp_path)  # fmt: skip
    assert calm.returncode == 0, calm.stderr
    assert "no drift" in calm.stdout and not (tmp_path / "fired.txt").exists()
    # --json: the same verdict as monitor.json; a key spelled as in the recipe (monitor.min_rows) works too
    few = seekforge("monitor", str(served_package), "--log", str(steady), "--window", "1h", "-o", str(tmp_path / "d"),
                    "--set", "monitor.min_rows=1000", "--json", cwd=tmp_path)  # fmt: skip
    printed = json.loads(few.stdout)
    assert few.returncode == 3 and printed["status"] == "not enough data"
    assert printed["verdict"] == json.loads((tmp_path / "d" / "monitor.json").read_text())["verdict"]
    moved = tmp_path / "moved.db"
    log_rows(moved, served_package, [(time.time() - 60, shifted(make_tabular(600, seed=6)))])
    alarm = seekforge("monitor", str(served_package), "--log", str(moved), "--window", "1h", "-o", str(tmp_path / "c"),
                      "--on-drift", fire, cwd=tmp_path)  # fmt: skip
    assert alarm.returncode == 1, alarm.stderr
    assert "DRIFT" in alarm.stdout and (tmp_path / "c" / "monitor.html").is_file()
    assert {"x1", "city"} <= set((tmp_path / "fired.txt").read_text().split(","))  # the command ran, told what drifted
    broken = seekforge("monitor", str(served_package), "--log", str(moved), "--window", "1h", "-o", str(tmp_path / "e"),
                       "--on-drift", "exit 7", cwd=tmp_path)  # fmt: skip
    assert broken.returncode == 4 and "the --on-drift command exited 7" in broken.stderr
    bad = seekforge("monitor", str(served_package), "--log", str(tmp_path / "nope.db"), cwd=tmp_path)
    assert bad.returncode == 2 and "prediction log not found" in bad.stderr and "Traceback" not in bad.stderr
    window = seekforge("monitor", str(served_package), "--log", str(moved), "--window", "soon", cwd=tmp_path)
    assert window.returncode == 2 and "--window: 'soon' is not a duration" in window.stderr


GOOD = ("great tasty snack", "love this tea", "excellent coffee, great price", "tasty and fresh")
BAD = ("stale and awful", "terrible taste", "never again, awful", "bland and stale coffee")
#: Another subject at the same lengths: what only the embeddings see.
ELSEWHERE = ("invoice paid late", "printer out again", "meeting moved to noon, again", "parcel left outside")


def reviews(rows: int, seed: int, pool: tuple[str, ...] = GOOD + BAD) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts = [str(t) for t in rng.choice(pool, rows)]
    return pd.DataFrame({"review": texts, "score": ["great" if t in GOOD else "other" for t in texts]})


@pytest.fixture(scope="module")
def text_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import seekforge

    root = tmp_path_factory.mktemp("text")
    reviews(200, seed=0).to_json(root / "t.jsonl", orient="records", lines=True)
    return seekforge.run(text_recipe(str(root / "t.jsonl")), runs_dir=root / "runs").package


def test_a_text_package_carries_its_model_embeddings(text_package: Path) -> None:
    sketch = json.loads((text_package / "reference.json").read_text())["features"]["review"]["embedding"]
    train_rows = json.loads((text_package / "package.json").read_text())["data"]["rows"]["train"]
    assert sketch["dim"] == 32 and sketch["rows"] == train_rows
    assert len(sketch["sample"]) == train_rows and len(sketch["axes"][0]) == 32


def test_cli_finds_a_new_subject_in_the_text_embeddings(text_package: Path, tmp_path: Path) -> None:
    log = tmp_path / "predictions.db"
    now = time.time()
    log_rows(
        log, text_package, [(now - 2 * HOUR, reviews(300, seed=1)), (now - 60, reviews(300, seed=2, pool=ELSEWHERE))]
    )
    result = monitor_package(
        text_package, log, window_seconds=HOUR, windows=2, now=now, config=MonitorConfig(min_rows=100)
    )
    steady, moved = (w.drift.features[0] for w in result.windows)
    assert steady.measure == "token counts"  # with the model at hand, lengths are in its tokens
    assert steady.embedding is not None and not steady.embedding.drifted and steady.embedding.rows == 300
    assert moved.embedding is not None and moved.embedding.drifted and moved.embedding.statistic > 0.9
    cli = seekforge(
        "monitor", str(text_package), "--log", str(log), "--window", "1h", "--set", "min_rows=100",
        "--set", "embedding_test=mmd", "-o", str(tmp_path / "r"), cwd=tmp_path,
    )  # fmt: skip
    assert cli.returncode == 1, cli.stderr
    assert "review (embeddings)" in cli.stdout and "mmd" in cli.stdout
    html = (tmp_path / "r" / "monitor.html").read_text()
    assert "embeddings: MMD" in html


def test_too_few_rows_exit_3_with_one_verdict_everywhere_and_the_webhook_hears_it(
    served_package: Path, tmp_path: Path
) -> None:
    import http.server
    import threading

    heard: list[dict] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            heard.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    few = tmp_path / "few.db"
    log_rows(few, served_package, [(time.time() - 60, make_tabular(60, seed=7))])
    with http.server.HTTPServer(("127.0.0.1", 0), Receiver) as receiver:
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        done = seekforge("monitor", str(served_package), "--log", str(few), "--window", "1h", "-o", "r",
                         "--notify", url, cwd=tmp_path)  # fmt: skip
        receiver.shutdown()
    assert done.returncode == 3, done.stderr
    verdict = "not enough data: 60 rows, fewer than min_rows 100"
    assert verdict in done.stdout
    report = json.loads((tmp_path / "r" / "monitor.json").read_text())
    assert (report["status"], report["verdict"]) == ("not enough data", verdict)
    assert verdict in (tmp_path / "r" / "monitor.html").read_text()
    assert len(heard) == 1 and heard[0]["status"] == "not enough data" and heard[0]["verdict"] == verdict
    assert heard[0]["window"]["rows"] == 60 and heard[0]["report"].endswith("monitor.html")
    unreachable = seekforge("monitor", str(served_package), "--log", str(few), "--window", "1h", "-o", "s",
                            "--notify", "http://127.0.0.1:9/hook", cwd=tmp_path)  # fmt: skip
    assert unreachable.returncode == 2 and "cannot reach it" in unreachable.stderr
    assert (tmp_path / "s" / "monitor.json").is_file()  # the reports come first
