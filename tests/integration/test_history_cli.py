"""A recipe with inputs derived from each customer's earlier visits: trained on a time-ordered split,
predicted from a file of raw visits by the real command, exported and run without torch, and served
with an entity's visits in one request."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

import seekforge
from seekforge.export import export_package
from seekforge.serve import ServeConfig
from tests.integration.cli import seekforge as run_cli
from tests.serve.conftest import running

DERIVED = [
    {"name": "mean3", "type": "numeric", "history": {"of": "amount", "window": 3}},
    {"name": "last", "type": "numeric", "history": {"of": "amount", "lag": 1}},
    {"name": "visits", "type": "numeric", "history": {"count": True}},
    {"name": "days_since", "type": "numeric", "history": {"gap": True}},
]


def make_spikes(root: Path, customers: int = 50, visits: int = 12, seed: int = 0) -> Path:
    """``root/visits.csv``: customers' amounts around their own level; a visit is a spike when its amount
    is 15 above the mean of the customer's three visits before it (which no single row shows)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(customers):
        level, at = rng.normal(50, 20), pd.Timestamp("2024-01-01") + pd.Timedelta(hours=int(rng.integers(0, 99)))
        for _ in range(visits):
            at += pd.Timedelta(hours=int(rng.integers(1, 72)))
            amount = level + rng.normal(0, 5) + (30 if rng.random() < 0.3 else 0)
            rows.append({"customer": f"c{c}", "ts": at.isoformat(), "amount": round(amount, 2)})
    frame = pd.DataFrame(rows)
    before = frame.groupby("customer")["amount"].transform(lambda s: s.shift(1).rolling(3, min_periods=1).mean())
    frame["spike"] = np.where(frame["amount"] > before + 15, "yes", "no")
    frame.sample(frac=1.0, random_state=seed).to_csv(root / "visits.csv", index=False)
    return root / "visits.csv"


def recipe(source: Path, inputs: list[dict[str, object]]) -> dict[str, object]:
    return {
        "name": "spikes", "seed": 0,
        "data": {"source": str(source), "split": {"order": "ts"}},
        "features": {"inputs": [{"name": "amount", "type": "numeric"}, *inputs],
                     "history": {"key": "customer", "time": "ts"}, "output": {"name": "spike", "type": "binary"}},
        "model": {"type": "mlp", "hidden": [32]}, "train": {"epochs": 25, "lr": 0.01},
    }  # fmt: skip


@pytest.fixture(scope="module")
def spikes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("history")
    source = make_spikes(root)
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe(source, DERIVED), sort_keys=False))
    proc = run_cli("run", "recipe.yaml", "--runs-dir", "runs", cwd=root, check=True)
    assert "spikes" in proc.stdout + proc.stderr
    (package,) = (root / "runs" / "spikes").glob("*/package")
    return root, package


def test_derived_inputs_carry_what_no_single_row_shows(spikes: tuple[Path, Path], tmp_path: Path) -> None:
    root, package = spikes
    with_history = seekforge.load(package).evaluate(pd.read_csv(root / "visits.csv"))
    alone = seekforge.run(recipe(root / "visits.csv", []), runs_dir=tmp_path).package
    without = seekforge.load(alone).evaluate(pd.read_csv(root / "visits.csv"))
    assert with_history["accuracy"] > 0.95 and with_history["accuracy"] - without["accuracy"] > 0.1


def test_predict_derives_from_the_files_rows_and_the_runtime_agrees(spikes: tuple[Path, Path]) -> None:
    root, package = spikes
    frame = pd.read_csv(root / "visits.csv")
    proc = run_cli("predict", str(package), "visits.csv", "-o", "out.csv", cwd=root)
    assert proc.returncode == 0, proc.stderr
    torch_answers = pd.read_csv(root / "out.csv")["prediction"]
    assert (torch_answers == frame["spike"]).mean() > 0.95
    export_package(package)
    from seekforge.runtime import load as load_runtime

    runtime = load_runtime(package).predict(frame)
    assert list(runtime["prediction"]) == list(torch_answers)
    given = frame.drop(columns=["customer"]).assign(mean3=np.nan, last=np.nan, visits=0.0, days_since=np.nan)
    assert list(seekforge.load(package, backend="torch").predict(given)["prediction"]) == list(
        load_runtime(package).predict(given)["prediction"]
    )  # derived columns given are taken as they are: no key needed
    frame.drop(columns=["customer"]).to_csv(root / "nokey.csv", index=False)
    proc = run_cli("predict", str(package), "nokey.csv", "-o", "bad.csv", cwd=root)
    assert proc.returncode == 2 and "input 'mean3' is derived from each 'customer''s earlier rows" in proc.stderr
    assert "Traceback" not in proc.stderr and not (root / "bad.csv").exists()


def test_a_request_derives_from_its_own_records_only(spikes: tuple[Path, Path]) -> None:
    _, package = spikes
    visits = [
        {"customer": "z", "ts": f"2024-02-0{d}T10:00:00", "amount": a} for d, a in ((1, 40.0), (2, 42.0), (3, 41.0))
    ]
    spike = {"customer": "z", "ts": "2024-02-04T10:00:00", "amount": 75.0}
    with running(package, ServeConfig(max_wait_ms=50), grpc=False) as (service, where):
        url = f"http://127.0.0.1:{where.http_port}/v1/predict"
        answer = httpx.post(url, json={"records": [*visits, spike]}, timeout=30)
        lone = httpx.post(url, json={"records": [spike]}, timeout=30)
        bad = httpx.post(url, json={"records": [{**spike, "ts": "noon"}]}, timeout=30)
        rows, _ = service.schema.validate([*visits, spike])
    assert answer.status_code == 200, answer.text
    assert [p["prediction"] for p in answer.json()["predictions"]] == ["no", "no", "no", "yes"]
    assert rows[3]["mean3"] == pytest.approx(41.0) and rows[3]["visits"] == 3.0 and rows[3]["days_since"] == 1.0
    assert lone.json()["predictions"][0]["prediction"] == "no"  # no history in its request: nothing to compare
    assert bad.status_code == 422 and "datetime column 'ts' holds 'noon'" in bad.text
