"""Federated training on Flower's simulation runtime (these tests run in the federated environment that
make test builds: Flower pins protobuf below the serve extra's). Sites keep their rows: the server is
given no data source, and what crosses is statistics (sums and counts), weight arrays and metrics; a
federation whose server stops resumes from its last round; the package is an ordinary one whose lineage
names the rounds, the sites and the strategy; bad site declarations are refused in words."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
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
from seekforge.federate._site import kept_round, read_checkpoint
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
    assert (
        "accuracy per site (held-out rows) and on the central test rows" in (built.package / "report.html").read_text()
    )
    tested = [json.loads(x) for x in (built.run_dir / "federated" / "central.jsonl").read_text().splitlines()]
    assert [x["round"] for x in tested] == [1, 2, 3]  # each round's weights on the central test rows, resumed too
    assert tested[-1]["accuracy"] == pytest.approx(built.metrics["accuracy"])  # (the last round's: the package's)
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


@pytest.mark.slow  # (about 2 minutes on 2 cores: each SuperNode polls its SuperLink every 3 s, and each message
# starts a ClientApp process that imports torch; make test-slow runs it)
def test_a_deployment_runs_a_superlink_and_three_supernodes_and_stops_them(tmp_path: Path) -> None:
    """Flower's deployment runtime on 127.0.0.1 over TLS, its nodes authenticated by their keys: the SuperLink
    and one SuperNode per site as processes, each site's rows in a file only its node reads. Its ServerApp
    killed outright after round 1 (said, exit 2); resumed and stopped (SIGTERM) after round 2; resumed for
    round 3; every process stopped by its PID."""
    make_tabular(300, seed=4).to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "fed.yaml").write_text(yaml.safe_dump(recipe(tmp_path / "rows.csv")))
    before = flower_processes()
    first = _started("federate", "fed.yaml", "--deployment", cwd=tmp_path, log=tmp_path / "first.log")
    try:
        wait_for_round(tmp_path, 1)
        server = [
            p for p in flower_processes() - before if b"flwr-serverapp" in Path(f"/proc/{p}/cmdline").read_bytes()
        ]
        os.kill(server[0], signal.SIGKILL)  # the ServerApp killed outright: it writes nothing
        assert first.wait(timeout=180) == 2
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGTERM)
    assert "the federation's server ended" in (tmp_path / "first.log").read_text()
    second = _started("federate", "fed.yaml", "--deployment", "--resume", cwd=tmp_path, log=tmp_path / "second.log")
    try:
        wait_for_round(tmp_path, 2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(second.pid, signal.SIGTERM)
    assert second.wait(timeout=60) != 0 and flower_processes() <= before  # stopped, with every process it started
    done = cli("federate", "fed.yaml", "--deployment", "--resume", "--json", cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    run = tmp_path / answer["run_dir"]
    assert answer["rounds"] == 3 and (run / "federated" / "finished.json").is_file()
    assert "round 2/3" not in done.stderr and "round 3/3" in done.stderr  # (rounds 1 and 2 were kept)
    lines = (run / "federated" / "rounds.jsonl").read_text().splitlines()
    assert [json.loads(line)["round"] for line in lines] == [1, 2, 3]
    logs = sorted(p.name for p in (run / "federated" / "logs").iterdir())
    assert logs == ["superlink.log", "supernode-0.log", "supernode-1.log", "supernode-2.log"]
    superlink = (run / "federated" / "logs" / "superlink.log").read_text()
    assert "https://127.0.0.1" in superlink  # TLS, its own CA
    lineage = read_manifest(tmp_path / answer["package"])["lineage"]["federated"]
    assert lineage["rounds"] == 3 and len(lineage["sites"]) == 3
    assert flower_processes() <= before  # every one stopped


def wait_for_round(folder: Path, round_: int) -> None:
    """Until a federation under ``folder`` has kept the global weights of ``round_``."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        kept = list(folder.glob("runs/fed/*/federated/global.safetensors"))
        if kept and kept_round(kept[0]) >= round_:
            return
        time.sleep(0.5)
    raise AssertionError(f"round {round_} was not kept within 300 s")


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


def _started(*args: str, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """``seekforge ARGS`` started in ``cwd`` (its own process group), its stderr in ``log``, its stdout beside
    it (``.out``)."""
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1", "PYTHONWARNINGS": "ignore"}
    with log.open("wb") as err, log.with_suffix(".out").open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "seekforge", *args], cwd=cwd, stdout=out, stderr=err, env=env,
                                start_new_session=True)  # fmt: skip


@pytest.mark.slow  # (about 2 minutes on 2 cores; make test-slow runs it)
def test_a_server_admits_only_its_sites_keys_and_packages_on_its_own_rows(tmp_path: Path) -> None:
    """Three sites on "their own machines" (their own folders and rows), each with its key pair; the server
    holds their public keys and a central test file, no site's rows; an impostor claiming to be a site with
    a key the server never registered is refused; every process is stopped by its PID."""
    from seekforge.federate._deploy import free_port

    rows = make_tabular(420, seed=6)
    server, names = tmp_path / "server", ["north", "south", "east"]
    (server / "keys").mkdir(parents=True)
    spec = recipe(Path("rows.csv"))  # (data.source: where each site keeps its rows)
    spec["data"] = {"source": "rows.csv", "test": str(server / "central.csv")}
    spec["federated"] = {"sites": {"remote": names}, "rounds": 2}
    rows.iloc[360:].to_csv(server / "central.csv", index=False)
    (server / "fed.yaml").write_text(yaml.safe_dump(spec))
    for number, (name, home) in enumerate([(n, tmp_path / n) for n in names] + [("east", tmp_path / "impostor")]):
        home.mkdir()
        rows.iloc[number * 120 : (number + 1) * 120].to_csv(home / "rows.csv", index=False)
        (home / "fed.yaml").write_text(yaml.safe_dump(spec))  # (the same recipe: data.test is not read there)
        made = json.loads(cli("federate", "keys", "--site", name, "--json", cwd=home, check=True).stdout)
        assert (home / made["private"]).stat().st_mode & 0o777 == 0o600
        if home.name != "impostor":  # (its key pair is its own: the server never registered it)
            shutil.copy(home / made["public"], server / "keys")
    assert_user_error(cli("federate", "keys", "--site", "north", cwd=tmp_path / "north"), "already exists")
    before = flower_processes()
    port = free_port()
    started = [_started("federate", "server", "fed.yaml", "--keys", "keys", "--listen", f"0.0.0.0:{port}", "--wait",
                        "300", "--json", cwd=server, log=tmp_path / "server.log")]  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while "waiting up to" not in (tmp_path / "server.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.5)  # (the SuperLink, its gate and the sites' keys registered)
        ca = next(server.glob("runs/fed/*/federated/flwr/tls/ca.pem"))
        control = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=str(ca)))
        control.request("POST", "/v1/control/list-runs", body=b"")
        assert control.getresponse().status == 404  # the sites' port passes the Fleet API only
        for home in [*(tmp_path / n for n in names), tmp_path / "impostor"]:
            name = "east" if home.name == "impostor" else home.name
            started.append(_started("federate", "site", "fed.yaml", "--site", name, "--superlink", f"127.0.0.1:{port}",
                                    "--ca", str(ca), "--key", f"{name}.key", "--port", str(free_port()),
                                    "--retries", "3", "--wait", "30", cwd=home, log=tmp_path / f"{home.name}.log"))  # fmt: skip
        assert started[-1].wait(timeout=180) == 2  # the impostor: refused, said in one line
        assert started[0].wait(timeout=480) == 0, (tmp_path / "server.log").read_text()
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            process.wait(timeout=60)
    assert "refused site east's node" in (tmp_path / "impostor.log").read_text()
    assert "round 2/2  sites 3" in (tmp_path / "server.log").read_text()
    assert "central test accuracy" in (tmp_path / "server.log").read_text()  # (each round, on the server's rows)
    answer = json.loads((tmp_path / "server.out").read_text())
    manifest = read_manifest(server / answer["package"])
    assert set(manifest["lineage"]["federated"]["sites"]) == set(names) and answer["rounds"] == 2
    assert manifest["data"]["rows"]["test"] == 60 and manifest["metrics"]["test"]["accuracy"] > 0.6
    assert not list(server.glob("runs/**/site-rows.pkl"))  # no site's rows at the server
    assert flower_processes() <= before


def test_remote_sites_are_declared_keyed_and_refused_in_words(tmp_path: Path) -> None:
    from seekforge.federate import join_site, serve_federation, site_keys
    from seekforge.federate.config import check_site_name

    make_tabular(60, seed=7).to_csv(tmp_path / "rows.csv", index=False)
    spec = recipe(tmp_path / "rows.csv")
    remote = Recipe.model_validate({**spec, "federated": {"sites": {"remote": ["north", "south"]}, "rounds": 1}})
    with pytest.raises(ConfigError, match="sites on their own machines"):
        federate(remote, runs_dir=tmp_path / "runs")
    texts = Recipe.model_validate({**spec, "features": {"inputs": [{"name": "note", "type": "text"}],
                                                        "output": {"name": "label", "type": "binary"}},
                                   "model": {"type": "transformer", "pretrained": "builtin:minilm",
                                             "vocabulary": "training"},
                                   "federated": {"sites": {"iid": 2}, "rounds": 1}})  # fmt: skip
    with pytest.raises(ConfigError, match="vocabulary: training cuts the token table"):
        federate(texts, runs_dir=tmp_path / "runs")
    with pytest.raises(ConfigError, match=r"data\.test is not set"):
        serve_federation(remote, keys=tmp_path)
    with pytest.raises(ConfigError, match=r"needs federated\.sites\.remote"):
        serve_federation(Recipe.model_validate(spec), keys=tmp_path)
    central = Recipe.model_validate({**remote.model_dump(mode="json"),
                                     "data": {"source": "rows.csv", "test": str(tmp_path / "rows.csv")}})  # fmt: skip
    private, public = site_keys("north", tmp_path / "keys")
    assert private.stat().st_mode & 0o777 == 0o600 and public.read_text().startswith("ecdsa-sha2-nistp384 ")
    with pytest.raises(ConfigError, match="already exists"):
        site_keys("north", tmp_path / "keys")
    with pytest.raises(ConfigError, match=r"no public key for 1 site\(s\): .*south\.pub"):
        serve_federation(central, keys=tmp_path / "keys")
    with pytest.raises(ConfigError, match=r"--site east: the recipe's federated\.sites\.remote names north, south"):
        join_site(remote, "east", "127.0.0.1:1", tmp_path / "rows.csv", port=1, retries=0, wait_s=1)
    with pytest.raises(ConfigError, match="use letters, digits"):
        check_site_name("../north")
    with pytest.raises(ValueError, match="remote names a site twice"):
        SitesConfig.model_validate({"remote": ["north", "north"]})
    with pytest.raises(ConfigError, match="--key without --ca"):
        join_site(remote, "north", "127.0.0.1:1", tmp_path / "rows.csv", port=1, retries=0, wait_s=1, key=private)
    from seekforge.federate._apps import _check_names

    _check_names({11: "north", 12: "south"}, {11: "north", 12: "south"})
    with pytest.raises(DataError, match="the node registered with south's key answers as 'north'"):
        _check_names({11: "north", 12: "north"}, {11: "north", 12: "south"})
    with pytest.raises(DataError, match="more than one node answers as site north"):
        _check_names({11: "north", 12: "north"}, None)
    assert_user_error(
        cli("federate", "fed.yaml", "--keys", "keys", cwd=tmp_path), "--keys: not an option of federate RECIPE"
    )


def test_a_sites_file_keeps_image_arrays_in_their_cells(tmp_path: Path) -> None:
    """Images held as arrays in their cells (builtin:digits) reach each site as they are."""
    from seekforge.data import read_source
    from seekforge.data.config import ReadConfig
    from seekforge.federate._site import load_site, write_sites

    rows = read_source("builtin:digits", ReadConfig()).head(40)
    spec = Recipe.model_validate({
        "name": "digits", "seed": 0, "data": {"source": "builtin:digits"},
        "features": {"inputs": [{"name": "image", "type": "image"}], "output": {"name": "label", "type": "category"}},
        "model": {"type": "cnn", "channels": [4]}, "federated": {"sites": {"iid": 2}, "rounds": 1}})  # fmt: skip
    [(name, data, work)] = write_sites({"north": rows}, tmp_path / "sites")
    site = load_site(name, str(data), str(work), spec.to_yaml())
    together = pd.concat([site.train_rows, site.held_rows]).sort_index()
    assert all(np.array_equal(a, b) for a, b in zip(together["image"], rows["image"], strict=True))
    assert site.statistics()["inputs"]["image"]["at"] == [8, 8]


def test_credentials_are_kept_while_they_serve_and_renewed_when_they_do_not(tmp_path: Path) -> None:
    from seekforge.federate._apps import _Federation
    from seekforge.federate._tls import certificate_names, certificates

    paths = certificates(tmp_path / "tls", names=["fl.example.org"])
    assert paths[2].stat().st_mode & 0o777 == 0o600
    assert {"fl.example.org", "localhost", "127.0.0.1"} <= set(certificate_names(paths[1]))
    ca = paths[0].read_bytes()
    assert certificates(tmp_path / "tls", names=["fl.example.org"]) == paths and paths[0].read_bytes() == ca
    with pytest.warns(UserWarning, match="give the sites the new ca.pem"):
        certificates(tmp_path / "tls", names=["fl.example.org", "10.0.0.7"])  # a name it lacks: a new CA
    assert paths[0].read_bytes() != ca and "10.0.0.7" in certificate_names(paths[1])

    class Grid:  # (every node online, a stray one among them)
        run_id = 7

        def get_node_ids(self) -> list[int]:
            return [11, 12, 99]

    federation = _Federation(Grid(), {11, 12})  # type: ignore[arg-type]
    assert federation.get_node_ids() == [11, 12] and federation.run_id == 7
