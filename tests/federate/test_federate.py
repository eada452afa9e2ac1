"""Federated training on Flower's simulation runtime (these tests run in the federated environment that
make test builds: Flower pins protobuf below the serve extra's). Sites keep their rows: the server is
given no data source, and what crosses is statistics (sums and counts), weight arrays and metrics; a
federation whose server stops resumes from its last round; the package is an ordinary one whose lineage
names the rounds, the sites and the strategy; bad site declarations are refused in words."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

pytest.importorskip("flwr", reason="the federated extra lives in its own environment (make test builds it)")
pytest.importorskip("ray")

import seekforge
from seekforge.core.errors import ConfigError, DataError
from seekforge.core.package import read_manifest
from seekforge.federate import SitesConfig, federate, partition
from seekforge.federate._site import read_checkpoint
from seekforge.recipe import Recipe
from tests.conftest import fusion_recipe, make_fusion, make_tabular
from tests.integration.cli import assert_user_error
from tests.integration.cli import seekforge as cli


def recipe(source: Path, **federated: Any) -> dict[str, Any]:
    return {
        "name": "fed", "seed": 0,
        "data": {"source": str(source), "split": {"train": 0.7, "validation": 0.1, "test": 0.2}},
        "features": {"inputs": [{"name": "x1", "type": "numeric"}, {"name": "x2", "type": "numeric"},
                                {"name": "city", "type": "category"}, {"name": "member", "type": "binary"}],
                     "output": {"name": "label", "type": "binary"}},
        "model": {"type": "mlp", "hidden": [16]},
        "train": {"epochs": 1, "batch_size": 16, "lr": 0.02},
        "federated": {"sites": {"iid": 3}, "rounds": 3, **federated},
    }  # fmt: skip


class Stop(Exception):
    """The server's process dying after a round (raised inside the ServerApp)."""


def test_a_federation_keeps_rows_at_the_sites_resumes_and_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flwr.superlink.grid import InMemoryGrid

    from seekforge.federate import _apps

    rows = make_tabular(400, seed=1)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    seen: dict[str, Any] = {"records": set(), "statistics": [], "arrays": 0}
    asked = InMemoryGrid.send_and_receive

    def spy(self: Any, messages: Any, *, timeout: float | None = None) -> Any:  # what reaches the server
        replies = list(asked(self, messages, timeout=timeout))
        for reply in replies:
            content = reply.content
            seen["records"] |= {f"array:{k}" for k in content.array_records}
            seen["records"] |= {f"metric:{k}" for k in content.metric_records}
            seen["records"] |= {f"config:{k}" for k in content.config_records}
            if "statistics" in content.config_records:
                seen["statistics"].append(json.loads(str(content["statistics"]["json"])))
            seen["arrays"] += len(content.array_records)
        return replies

    monkeypatch.setattr(InMemoryGrid, "send_and_receive", spy)
    plans: list[Any] = []
    federation = _apps.federation
    monkeypatch.setattr(_apps, "federation", lambda grid, plan: (plans.append(plan), federation(grid, plan))[1])

    def stop_after_one(record: dict[str, Any]) -> None:
        if record["round"] == 1:
            raise Stop

    spec = Recipe.model_validate(recipe(tmp_path / "rows.csv", strategy={"type": "fedadam", "eta": 0.05}))
    with pytest.raises(Stop):  # the server's failure is the federation's
        federate(spec, runs_dir=tmp_path / "runs", on_round=stop_after_one)
    assert plans[0].recipe.data.source == "(kept by the sites)" and str(tmp_path) not in plans[0].recipe.to_yaml()
    assert seen["records"] == {"config:site", "config:statistics", "array:arrays", "metric:metrics"}
    values = set(rows["x1"]) | set(rows["x2"])
    for stats in seen["statistics"]:  # sums and counts: no row's own number
        assert set(stats["inputs"]["x1"]) == {"n", "sum", "m2"}
        assert not {v for part in ("x1", "x2") for v in stats["inputs"][part].values()} & values
    resumed = []
    built = federate(spec, runs_dir=tmp_path / "runs", resume=True, on_round=lambda r: resumed.append(r["round"]))
    assert resumed == [2, 3]  # from the kept weights of round 1 and FedAdam's moments
    straight = federate(spec, runs_dir=tmp_path / "straight")  # the same federation, never stopped
    kept = [read_checkpoint(run.run_dir / "federated" / "global.safetensors") for run in (built, straight)]
    assert kept[0][2] and kept[0][2].keys() == kept[1][2].keys()  # (the moments kept with the weights)
    assert all(torch.allclose(kept[0][1][k], kept[1][1][k], atol=1e-5) for k in kept[1][1])
    lines = [json.loads(x) for x in (built.run_dir / "federated" / "rounds.jsonl").read_text().splitlines()]
    assert [x["round"] for x in lines] == [1, 2, 3] and set(lines[-1]["evaluate"]) == {"site-0", "site-1", "site-2"}
    manifest = read_manifest(built.package)
    lineage = manifest["lineage"]["federated"]
    assert lineage["rounds"] == 3 and lineage["strategy"]["type"] == "fedadam" and lineage["partition"] == "iid"
    assert len(lineage["sites"]) == 3 and sum(lineage["sites"].values()) == manifest["data"]["rows"]["train"]
    assert built.metrics["accuracy"] > 0.6
    assert "accuracy per site (held-out rows)" in (built.package / "report.html").read_text()
    predicted = seekforge.load(built.package).predict(rows.head(5).drop(columns="label"))
    assert len(predicted["prediction"]) == 5


def test_the_cli_federates_a_fusion_model_with_fedprox_and_client_side_privacy(tmp_path: Path) -> None:
    """Texts (their vocabulary pooled from the sites' words), a number, a category, an image, sequences of
    numbers and of tokens and a time, by site."""
    source = make_fusion(tmp_path)
    rows = pd.read_csv(source)
    rows["hospital"] = np.where(np.arange(len(rows)) % 3 == 0, "north", "south")
    rows["admitted"] = pd.date_range("2024-01-01", periods=len(rows), freq="7h").strftime("%Y-%m-%dT%H:%M:%SZ")
    rows.to_csv(source, index=False)
    spec = fusion_recipe(str(source))
    spec["features"]["inputs"].append({"name": "admitted", "type": "datetime"})
    spec["train"] = {"epochs": 1, "batch_size": 16, "lr": 0.01}
    spec["federated"] = {"sites": {"by": "hospital"}, "rounds": 2, "strategy": {"type": "fedprox", "mu": 0.1},
                         "privacy": {"clip": 5.0, "noise_multiplier": 0.01}, "validation": 0.0}  # fmt: skip
    (tmp_path / "fed.yaml").write_text(yaml.safe_dump(spec))
    done = cli("federate", "fed.yaml", "--json", cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    lineage = read_manifest(tmp_path / answer["package"])["lineage"]["federated"]
    assert answer["rounds"] == 2 and set(lineage["sites"]) == {"north", "south"}
    assert lineage["strategy"]["type"] == "fedprox" and lineage["privacy"] == {"clip": 5.0, "noise_multiplier": 0.01}
    assert "round 2/2" in done.stderr  # each round said as it ends
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**spec, "federated": {**spec["federated"], "rounds": 0}}))
    assert_user_error(cli("federate", "bad.yaml", cwd=tmp_path), "rounds")


def test_sites_are_partitioned_by_flower_and_bad_declarations_are_refused() -> None:
    rows = make_tabular(300, seed=3).assign(site=lambda f: np.where(f["x1"] > 0, "a", "b"))
    by = partition(rows, SitesConfig(by="site"), label="label", seed=0)
    assert list(by) == ["a", "b"] and sum(map(len, by.values())) == len(rows)
    assert all((part["site"] == name).all() for name, part in by.items())
    iid = partition(rows, SitesConfig(iid=4), label="label", seed=0)
    assert sorted(len(p) for p in iid.values()) == [75, 75, 75, 75]
    assert pd.concat(iid.values()).index.sort_values().equals(rows.index)  # every row once
    with warnings.catch_warnings():  # (a skewed site may hold no row of a class: warned, see below)
        warnings.simplefilter("ignore", RuntimeWarning)
        skewed = partition(rows, SitesConfig.model_validate({"dirichlet": {"clients": 3, "alpha": 0.3}}),
                           label="label", seed=0)  # fmt: skip
    shares = [p["label"].eq("buy").mean() for p in skewed.values()]
    assert max(shares) - min(shares) > 0.2  # label skew
    with pytest.raises(ConfigError, match="one site is central training"):
        partition(rows.assign(site="a"), SitesConfig(by="site"), label="label", seed=0)
    with pytest.raises(DataError, match="dirichlet"):
        partition(rows.head(40), SitesConfig.model_validate({"dirichlet": {"clients": 5, "min_rows": 30}}),
                  label="label", seed=0)  # fmt: skip
    lopsided = rows.assign(site=lambda f: np.where(f["label"] == "buy", "only-buy", "mixed"))
    lopsided.loc[lopsided.index[:5], "site"] = "mixed"
    with pytest.warns(RuntimeWarning, match="site only-buy has no training rows of class"):
        partition(lopsided, SitesConfig(by="site"), label="label", seed=0)


@pytest.mark.slow  # (about 70 s on 2 cores: each SuperNode polls its SuperLink every 3 s, and each message
# starts a ClientApp process that imports torch; make test-slow runs it)
def test_a_deployment_runs_a_superlink_and_three_supernodes_and_stops_them(tmp_path: Path) -> None:
    """Flower's deployment runtime on 127.0.0.1 over TLS: the SuperLink and one SuperNode per site as
    processes, each site's rows in a file only its node reads; 3 rounds; every process stopped by its PID."""
    make_tabular(300, seed=4).to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "fed.yaml").write_text(yaml.safe_dump(recipe(tmp_path / "rows.csv")))
    before = flower_processes()
    done = cli("federate", "fed.yaml", "--deployment", "--json", cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    run = tmp_path / answer["run_dir"]
    assert answer["rounds"] == 3 and (run / "federated" / "finished.json").is_file()
    logs = sorted(p.name for p in (run / "federated" / "logs").iterdir())
    assert logs == ["superlink.log", "supernode-0.log", "supernode-1.log", "supernode-2.log"]
    assert "https://127.0.0.1" in (run / "federated" / "logs" / "superlink.log").read_text()  # TLS, its own CA
    lineage = read_manifest(tmp_path / answer["package"])["lineage"]["federated"]
    assert lineage["rounds"] == 3 and len(lineage["sites"]) == 3
    assert flower_processes() <= before  # every one stopped


def flower_processes() -> set[int]:
    """The PIDs of Flower's processes running now (a SuperLink, a SuperNode, their runtimes)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and ("flower-" in command or "flwr-" in command):
            found.add(int(entry.name))
    return found


def test_a_site_that_cannot_reach_its_superlink_says_so(tmp_path: Path) -> None:
    make_tabular(60, seed=5).to_csv(tmp_path / "mine.csv", index=False)
    (tmp_path / "fed.yaml").write_text(yaml.safe_dump(recipe(tmp_path / "mine.csv")))
    from seekforge.federate._deploy import free_port

    unreachable = f"127.0.0.1:{free_port()}"
    failed = cli("federate", "site", "fed.yaml", "--site", "north", "--superlink", unreachable, "--data", "mine.csv",
                 "--retries", "1", "--wait", "1", "--port", str(free_port()), cwd=tmp_path, timeout=120)  # fmt: skip
    assert_user_error(failed, f"the SuperLink at {unreachable} could not be reached")
    (tmp_path / "other.csv").write_text("x1,label\n1,buy\n")
    assert_user_error(cli("federate", "site", "fed.yaml", "--site", "north", "--superlink", unreachable, "--data",
                          "other.csv", cwd=tmp_path), "x2")  # fmt: skip
