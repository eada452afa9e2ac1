"""The studio over a folder of runs in every state: the table pages, sorts and filters; a run's curves and
recipe are the files' own numbers; damaged files are shown as such; no route answers 500."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

pytest.importorskip("fastapi")

from seekforge.studio import create_app, curves
from tests.studio.client import studio_client


def write_run(root: Path, name: str, stamp: str, *, epochs: int = 5, model: str = "mlp", test: float | None = None,
              recipe: str | None = None, age: float = 0.0) -> Path:  # fmt: skip
    """A run folder as ``seekforge run`` leaves it: its recipe, one metrics line per epoch, and a package
    when ``test`` is given; its files ``age`` seconds old."""
    folder = root / name / stamp
    folder.mkdir(parents=True)
    text = recipe if recipe is not None else yaml.safe_dump({"name": name, "model": {"type": model}, "seed": 0})
    (folder / "recipe.yaml").write_text(text)
    lines = [json.dumps({"epoch": e, "train_loss": 1.0 / e, "lr": 0.01, "val_loss": 1.2 / e,
                         "val_accuracy": 0.5 + e / 100}) for e in range(1, epochs + 1)]  # fmt: skip
    (folder / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    if test is not None:
        (folder / "package").mkdir()
        (folder / "package" / "package.json").write_text(
            json.dumps({"task": "classification", "metrics": {"test": {"rows": 10, "accuracy": test}}})
        )
    for path in folder.rglob("*"):
        os.utime(path, (time.time() - age, time.time() - age))
    return folder


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_run(root, "alpha", "20260101-000000", test=0.91, age=3600)
    write_run(root, "alpha", "20260102-000000", test=0.87, model="cnn", age=3000)
    write_run(root, "beta", "20260103-000000", epochs=3, age=2000)  # no package, quiet for long: stopped
    live = write_run(root, "gamma", "20260104-000000", epochs=4)  # no package, written just now: running
    with (live / "metrics.jsonl").open("a") as f:
        f.write('{"epoch": 5, "train_lo')  # being written: not a line yet
    damaged = write_run(root, "delta", "20260105-000000", epochs=4, test=0.5, age=100)
    text = (damaged / "metrics.jsonl").read_text().splitlines()
    text[2] = "{not json"
    (damaged / "metrics.jsonl").write_text("\n".join(text) + "\n")
    broken = root / "eps" / "20260106-000000"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "recipe.yaml").write_text("model: [unclosed")  # a half-written recipe
    (root / "notes.txt").write_text("not a run")
    return root


def test_the_runs_table_pages_sorts_and_filters(runs: Path) -> None:
    client = studio_client(create_app(runs))
    everything = client.get("/api/runs", params={"limit": 500}).json()
    status = {r["id"]: r["status"] for r in everything["runs"]}
    assert everything["total"] == 6 and status == {
        "alpha/20260101-000000": "finished", "alpha/20260102-000000": "finished", "beta/20260103-000000": "stopped",
        "gamma/20260104-000000": "running", "delta/20260105-000000": "finished", "eps/20260106-000000": "incomplete",
    }  # fmt: skip
    assert [r["id"] for r in everything["runs"]][:2] == ["eps/20260106-000000", "delta/20260105-000000"]  # newest
    page = client.get("/api/runs", params={"limit": 2, "offset": 2, "sort": "name", "order": "asc"}).json()
    assert [r["name"] for r in page["runs"]] == ["beta", "delta"] and page["total"] == 6
    best = client.get("/api/runs", params={"sort": "test", "order": "desc", "limit": 1}).json()["runs"][0]
    assert best["id"] == "alpha/20260101-000000" and best["test"] == {"accuracy": 0.91}
    assert best["validation"] == {"val_accuracy": pytest.approx(0.55)} and best["epochs"] == 5
    assert [r["model"] for r in client.get("/api/runs", params={"q": "cnn"}).json()["runs"]] == ["cnn"]
    assert client.get("/api/runs", params={"status": "running"}).json()["total"] == 1
    assert client.get("/api/runs", params={"sort": "colour"}).status_code == 422
    html = client.get("/", params={"limit": 2}).text
    assert html.count('<tr data-run="') == 2 and "1–2 of 6" in html and "next →" in html
    assert "<script>" not in re.sub(r"<script>studio\.[a-zA-Z]+\([^<]*\);</script>", "", html)  # only our calls


def test_a_runs_curves_and_recipe_are_the_files_own(runs: Path) -> None:
    client = studio_client(create_app(runs))
    data = client.get("/api/runs/alpha/20260101-000000/curves").json()
    assert data["x"] == [1, 2, 3, 4, 5] and data["series"]["train_loss"] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert set(data["series"]) == {"train_loss", "lr", "val_loss", "val_accuracy"} and data["lines"] == 5
    thin = curves(write_run(runs, "long", "20260107-000000", epochs=5000), points=100)
    assert len(thin.x) <= 101 and thin.x[0] == 1 and thin.x[-1] == 5000  # the shape and the end kept
    live = client.get("/api/runs/gamma/20260104-000000/curves").json()
    assert live["lines"] == 4 and live["x"] == [1, 2, 3, 4]  # the line being written waits for its newline
    damaged = client.get("/api/runs/delta/20260105-000000/curves").json()
    assert damaged["bad_lines"] == [3] and damaged["x"] == [1, 2, 4]
    page = client.get("/runs/delta/20260105-000000").text
    assert "1 unreadable line" in page and "delta" in page
    run = client.get("/api/runs/alpha/20260102-000000").json()
    assert run["recipe"] == (runs / "alpha" / "20260102-000000" / "recipe.yaml").read_text()
    diff = client.get("/compare", params={"ids": "alpha/20260101-000000,alpha/20260102-000000"}).text
    assert "-  type: mlp" in diff and "+  type: cnn" in diff


def test_no_route_answers_500_and_none_leaves_the_folder(runs: Path, own_registry: Path) -> None:
    own_registry.write_text("not a database")
    (runs / "delta" / "20260105-000000" / "weights.jsonl").write_text(
        '{"epoch": 1, "layers": {"a": 3, "b": {"counts": "x", "min": null}, "c": {"counts": [1, -2], "min": 0, "max": 1}}}\n'
        '{"epoch": "two", "layers": {"a": {"shape": 1}}}\n[1, 2]\n'
    )
    damaged = write_run(runs, "zeta", "20260107-000000", test=0.5) / "package"
    (damaged / "package.json").write_text(json.dumps({
        "name": 3, "inputs": 5, "files": 2, "lineage": [], "compress": {"variants": 3, "selected": None},
        "exports": {"onnx": {"parity": {"failures": 7, "rows": "x"}}, "bad": 4}}))  # fmt: skip
    (damaged.parent / "explain").mkdir()
    (damaged.parent / "explain" / "explanation.json").write_text(json.dumps(
        {"package": str(damaged), "rows": 3, "completeness": [], "faithfulness": 2, "importance": {"a": "x"}}))  # fmt: skip
    client = studio_client(create_app(runs), raise_server_exceptions=False)
    assert "cannot be opened" in client.get("/registry").text
    index = client.get("/", params={"limit": 500}).text
    links = set(re.findall(r'href="(/[^"]*)"', index))
    ids = [r["id"] for r in client.get("/api/runs", params={"limit": 500}).json()["runs"]]
    routes = [f"/runs/{i}" for i in ids] + [f"/api/runs/{i}" for i in ids] + [f"/api/runs/{i}/curves" for i in ids]
    routes += [f"/runs/{i}/report" for i in ids] + [f"/api/runs/{i}/weights" for i in ids]
    routes += [f"/api/runs/{i}/weights?layer={layer}&epoch=1" for i in ids for layer in ("a", "b", "c", "zz")]
    routes += ["/registry", "/api/registry"]
    for package in client.get("/api/packages").json()["packages"]:
        routes += [f"/packages/{package['id']}", f"/api/packages/{package['id']}", f"/api/inside/{package['id']}"]
        routes += [f"/packages/{package['id']}/explain/report"]
    assert "/packages/zeta/20260107-000000/package" in routes
    for url in sorted(links | set(routes)):
        answer = client.get(url.replace("&amp;", "&"))
        assert answer.status_code in (200, 404, 422), (url, answer.status_code, answer.text[:200])
    for url in ("/api/runs/../notes.txt", "/runs/alpha/..", "/api/runs/alpha/%2e%2e/curves", "/runs/x/y",
                "/compare?ids=alpha/20260101-000000", "/compare?ids=a/b,c/d", "/api/runs?limit=0"):  # fmt: skip
        assert client.get(url).status_code in (404, 422), url
    assert client.get("/api/runs/eps/20260106-000000").json()["status"] == "incomplete"
    assert studio_client(create_app(runs.parent / "nowhere")).get("/api/runs").json()["total"] == 0


def test_with_keys_every_route_needs_one_and_the_sign_in_sets_a_cookie_scripts_cannot_read(runs: Path) -> None:
    key = "a+b/c=d"  # base64-like: survives the form and the cookie
    client = studio_client(create_app(runs, api_keys={key}), follow_redirects=False)
    assert client.get("/api/runs").status_code == 401
    redirect = client.get("/runs/alpha/20260101-000000", params={"x": "1"}).headers["location"]
    assert redirect == "/signin?next=%2Fruns%2Falpha%2F20260101-000000%3Fx%3D1"
    assert client.get("/static/studio.css").status_code == 200  # the sign-in page's own files
    assert client.get("/api/runs", headers={"x-api-key": key}).json()["total"] == 6
    assert client.get("/api/runs", headers={"authorization": "Bearer nope"}).status_code == 401
    wrong = client.post("/signin", data={"key": "nope", "next": "/"})
    assert wrong.status_code == 401 and "not one of them" in wrong.text and not wrong.cookies
    right = client.post("/signin", data={"key": key, "next": "/runs/alpha/20260101-000000"})
    assert right.status_code == 303 and right.headers["location"] == "/runs/alpha/20260101-000000"
    cookie = right.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/runs/alpha/20260101-000000").status_code == 200  # the cookie the client kept
    for hostile in ("//evil.example/x", "/\\evil.example", "https://evil.example/", "/ok\r\nSet-Cookie: x=1"):
        assert client.post("/signin", data={"key": key, "next": hostile}).headers["location"] == "/"
    page = client.get("/signin", params={"next": "/</script><script>alert(1)</script>"}).text
    assert "<script>alert" not in page and "&lt;/script&gt;" in page


def test_pages_never_run_what_a_file_holds(runs: Path) -> None:
    name = "x<img src=1 onerror=alert(1)>"  # a folder name: anything but a slash
    hostile = write_run(runs, name, "20260109-000000", age=10)
    (hostile / "report.html").write_text("<script>document.cookie</script>")
    client = studio_client(create_app(runs))
    run_id = f"{quote(name)}/20260109-000000"
    page = client.get(f"/runs/{run_id}").text
    assert "<img" not in page and "\\u003cimg" in page  # in the page's script, as JSON escapes
    report = client.get(f"/runs/{run_id}/report")
    assert report.headers["content-security-policy"] == "sandbox allow-scripts"  # an origin of its own
    write_run(runs, "fine", "1<img src=2 onerror=alert(2)>", age=10)  # a stamp that is no stamp
    assert "<img" not in client.get("/").text and "1&lt;img" in client.get("/").text
    assert studio_client(create_app(runs)).get("/", headers={"host": "evil.example"}).status_code == 400


def test_packages_show_their_lineage_exports_and_card(runs: Path) -> None:
    parent = runs / "alpha" / "20260101-000000" / "package"
    manifest = json.loads((parent / "package.json").read_text())
    manifest.update(name="alpha<script>x</script>", created="2026-01-01T00:00:00+00:00", model={"type": "mlp"},
                    lineage={"data_hash": "d" * 64, "recipe_hash": "r" * 64, "parent": None},
                    exports={"onnx": {"format": "onnx", "precision": "fp32", "inputs": "raw", "bytes": 2e6,
                                      "parity": {"passed": True, "rows": 64, "agreement": 1.0, "max_abs_diff": 1e-6}},
                             "onnx-int8": {"format": "onnx", "precision": "int8", "bytes": 5e5,
                                           "parity": {"passed": False, "failures": ["agreement 0.9 < 0.999"]}}})  # fmt: skip
    (parent / "package.json").write_text(json.dumps(manifest))
    (parent / "model_card.md").write_text("# Model card\nIntended use: tests.")
    child = runs / "alpha" / "compress-20260102-000000" / "pruned"
    child.mkdir(parents=True)
    variants = [
        {"name": "parent", "ratio": None, "parameters": 5000, "metric": 0.95, "verdict": "parent"},
        {"name": "pruned-30", "ratio": 0.3, "parameters": 3500, "metric": 0.9, "verdict": "kept"},
    ]
    (child / "package.json").write_text(json.dumps({"name": "alpha-pruned", "task": "classification",
        "metrics": {"test": {"accuracy": 0.9}}, "lineage": {"parent": str(parent)},
        "compress": {"selected": "pruned-30", "metric": "accuracy", "variants": variants}}))  # fmt: skip
    orphan = runs / "beta" / "compress-20260103-000000" / "pruned"
    orphan.mkdir(parents=True)
    (orphan / "package.json").write_text(json.dumps({"name": "orphan", "lineage": {"parent": "/nowhere/package"}}))
    client = studio_client(create_app(runs))
    listed = {p["id"]: p for p in client.get("/api/packages").json()["packages"]}
    assert set(listed) == {"alpha/20260101-000000/package", "alpha/20260102-000000/package", "alpha/compress-20260102-000000/pruned",
                           "beta/compress-20260103-000000/pruned", "delta/20260105-000000/package"}  # fmt: skip
    assert listed["alpha/20260101-000000/package"]["exports"] == {"onnx": True, "onnx-int8": False}
    chain = client.get("/api/packages/alpha/compress-20260102-000000/pruned").json()["lineage"]
    assert [step["id"] for step in chain] == ["alpha/compress-20260102-000000/pruned", "alpha/20260101-000000/package"]
    page = client.get("/packages/alpha/compress-20260102-000000/pruned").text
    assert 'href="/packages/alpha/20260101-000000/package"' in page and "alpha&lt;script&gt;" in page
    flow = page[page.index('<ol class="flow"') : page.index("</ol>")]  # data -> run -> trained -> compressed
    assert [flow.index(s) for s in ("d" * 12, 'href="/runs/alpha/20260101-000000"', "<b>trained</b>", "<b>compressed</b>")] == sorted(
        flow.index(s) for s in ("d" * 12, 'href="/runs/alpha/20260101-000000"', "<b>trained</b>", "<b>compressed</b>"))  # fmt: skip
    assert "kept: <b>pruned-30</b>" in page and '<td class="num">3500</td>' in page and "<td>kept</td>" in page
    parent_page = client.get("/packages/alpha/20260101-000000/package").text
    assert "failed: agreement 0.9 &lt; 0.999" in parent_page and "Intended use: tests." in parent_page
    assert "<script>x" not in parent_page and "d" * 12 in parent_page
    assert (
        "/nowhere/package<small>not found</small>" in client.get("/packages/beta/compress-20260103-000000/pruned").text
    )
    assert 'href="/packages/alpha/20260101-000000/package"' in client.get("/runs/alpha/20260101-000000").text
    for bad in ("/packages/../etc", "/api/packages/alpha/..%2f..%2fetc", "/packages/alpha", "/packages/x/y/z/report"):
        assert client.get(bad).status_code == 404, bad


def test_a_draft_recipe_is_checked_field_by_field_and_data_stays_under_its_folder(tmp_path: Path) -> None:
    from tests.conftest import make_tabular, tabular_recipe

    (tmp_path / "data").mkdir()
    make_tabular(50).to_csv(tmp_path / "data" / "shop.csv", index=False)
    (tmp_path / "secret.csv").write_text("a,b\n1,2\n")
    client = studio_client(create_app(tmp_path / "runs", data_root=tmp_path / "data"))
    draft = tabular_recipe("shop.csv")
    assert client.post("/api/recipes/check", json=draft).json()["problems"] == []
    bad = client.post("/api/recipes/check", json={**draft, "train": {"lr": -1, "epoks": 3}}).json()
    paths = {p["path"]: p for p in bad["problems"]}
    assert set(paths) == {"train.lr", "train.epoks"} and paths["train.epoks"]["suggestion"] == "epochs"
    assert "lr: -1" in bad["yaml"]
    shown = client.get("/api/data/preview", params={"source": "shop.csv"}).json()
    assert shown["rows_total"] == 50 and [c["name"] for c in shown["columns"]][-1] == "label"
    assert {c["name"]: c["type"] for c in shown["columns"]}["x1"] == "numeric" and len(shown["rows"]) == 10
    for outside in ("../secret.csv", str(tmp_path / "secret.csv"), "nope.csv"):
        assert client.get("/api/data/preview", params={"source": outside}).status_code == 422, outside
    drafted = client.get("/api/data/draft", params={"source": "shop.csv", "label": "label"}).json()
    assert drafted["data"]["source"] == "shop.csv" and drafted["features"]["output"]["name"] == "label"
    refused = client.post("/api/recipes/run", json={**draft, "model": {"type": "nope"}})
    assert refused.status_code == 422 and refused.json()["problems"][0]["path"] == "model"
    assert not (tmp_path / "data" / "recipes").exists()  # nothing saved for an invalid recipe
    assert client.post("/api/recipes/check", content=b"{not json").status_code == 422


def test_the_registry_is_read_without_a_lock_and_shown_beside_runs_and_packages(
    served_package: Path, tmp_path: Path, own_registry: Path
) -> None:
    import shutil
    import sqlite3

    from seekforge.registry import Registry

    runs = tmp_path / "runs"
    client = studio_client(create_app(runs))
    assert "no registry at" in client.get("/registry").text and not own_registry.exists()  # not made
    run = runs / "credit" / "20260101-000000"
    shutil.copytree(served_package.parent, run)
    registry = Registry(own_registry)  # where the studio finds it: $SEEKFORGE_REGISTRY
    name = registry.names()[0] if registry.names() else None
    version = registry.register(run / "package", name="credit")
    registry.promote("credit", version)
    assert name is None and version == 1
    database = own_registry
    before = (database.read_bytes(), database.stat().st_mtime_ns)
    writer = sqlite3.connect(database)
    writer.execute("BEGIN IMMEDIATE")  # a promotion in progress holds the write lock
    try:
        client = studio_client(create_app(runs))
        found = client.get("/api/registry").json()
        assert found["problem"] is None and [m["name"] for m in found["models"]] == ["credit"]
        (shown,) = found["models"][0]["versions"]
        assert shown["aliases"] == ["champion"] and shown["package"] == str((run / "package").resolve())
        assert [e["action"] for e in found["models"][0]["history"]] == ["register", "promote"]
        (listed,) = client.get("/api/runs").json()["runs"]
        assert listed["registered"] == ["credit v1 (champion)"]
        assert "credit v1 (champion)" in client.get("/").text
        package_page = client.get("/packages/credit/20260101-000000/package").text
        flow = package_page[package_page.index('<ol class="flow"') : package_page.index("</ol>")]
        assert flow.index("<b>trained</b>") < flow.index("<b>exports</b>") < flow.index('href="/registry#credit"')
        page = client.get("/registry").text
        assert (
            'href="/packages/credit/20260101-000000/package"' in page and '<span class="alias">champion</span>' in page
        )
    finally:
        writer.rollback()
        writer.close()
    assert (database.read_bytes(), database.stat().st_mtime_ns) == before  # read, never written


def weights_line(epoch: int, scale: float, drawn: dict[int, Any] | None = None) -> str:
    """A line of ``weights.jsonl`` as the trainer writes it: two layers of normal values of ``scale`` (the
    first layer's values kept in ``drawn`` by epoch)."""
    import numpy as np

    rng = np.random.default_rng(epoch)
    layers = {}
    for name, shape in (("encoder.weight", [40, 50]), ("encoder.bias", [40])):
        values = rng.normal(0, scale, size=int(np.prod(shape)))
        counts, _ = np.histogram(values, bins=32, range=(values.min(), values.max()))
        layers[name] = {"shape": shape, "min": float(values.min()), "max": float(values.max()),
                        "counts": counts.tolist(), "std": float(values.std()), "grad_norm": 1.0 / epoch}  # fmt: skip
        if name == "encoder.weight" and drawn is not None:
            drawn[epoch] = values
    return json.dumps({"epoch": epoch, "bins": 32, "layers": layers}) + "\n"


def test_a_runs_weights_are_read_as_they_grow_with_quantiles_from_their_histograms(runs: Path) -> None:
    import numpy as np

    folder = runs / "gamma" / "20260104-000000"
    expected: dict[int, np.ndarray] = {}

    def line(epoch: int, scale: float) -> str:
        return weights_line(epoch, scale, expected)

    (folder / "weights.jsonl").write_text(line(1, 1.0) + "{damaged\n" + line(2, 2.0) + '{"epoch": 3, "la')
    client = studio_client(create_app(runs))
    shown = client.get("/api/runs/gamma/20260104-000000/weights").json()
    assert [entry["name"] for entry in shown["layers"]] == ["encoder.weight", "encoder.bias"]
    assert shown["layer"] == "encoder.weight" and shown["epochs"] == [1, 2] and shown["bad_lines"] == 1
    for k, epoch in enumerate(shown["epochs"]):  # within a bin's width of the values' own quantiles
        width = (expected[epoch].max() - expected[epoch].min()) / 32
        for q in (5, 25, 50, 75, 95):
            assert abs(shown["quantiles"][f"p{q}"][k] - np.percentile(expected[epoch], q)) < width
    histogram = shown["histogram"]
    assert shown["grad_norm"] == [1.0, 0.5] and histogram["epoch"] == 2 and histogram["first_epoch"] == 1
    assert sum(histogram["counts"]) == pytest.approx(2000) and sum(histogram["first"]) == pytest.approx(2000)
    step = histogram["centres"][1] - histogram["centres"][0]  # one grid over both epochs' ranges
    low, high = histogram["centres"][0] - step / 2, histogram["centres"][-1] + step / 2
    both = np.concatenate([expected[1], expected[2]])
    assert (low, high) == pytest.approx((both.min(), both.max()))
    with (folder / "weights.jsonl").open("a") as f:  # the last line completed, and a fourth epoch
        f.write('yers": {}}\n' + line(4, 3.0))
    grown = client.get("/api/runs/gamma/20260104-000000/weights", params={"layer": "encoder.bias", "epoch": 1}).json()
    assert grown["epochs"] == [1, 2, 3, 4] and grown["layer"] == "encoder.bias" and grown["histogram"]["epoch"] == 1
    assert grown["quantiles"]["p50"][2] is None and grown["grad_norm"][2] is None  # epoch 3 recorded no layer
    assert sum(grown["histogram"]["counts"]) == pytest.approx(40) and "first" not in grown["histogram"]
    later = client.get("/api/runs/gamma/20260104-000000/weights", params={"epoch": 100}).json()
    assert later["histogram"]["epoch"] == 4  # an epoch not recorded: the last one recorded before it
    (folder / "weights.jsonl").write_text(line(1, 1.0))  # cut back in place
    assert client.get("/api/runs/gamma/20260104-000000/weights").json()["epochs"] == [1]
    replaced = folder / "weights.tmp"  # a resumed run: cut back atomically (a new file), then grown past the old
    replaced.write_text(line(1, 5.0) + line(2, 5.0) + line(3, 5.0) + line(4, 5.0) + line(5, 5.0))
    os.replace(replaced, folder / "weights.jsonl")
    again = client.get("/api/runs/gamma/20260104-000000/weights").json()
    assert again["epochs"] == [1, 2, 3, 4, 5] and again["bad_lines"] == 0
    assert again["quantiles"]["p95"][0] == pytest.approx(np.percentile(expected[1], 95), abs=1.0)  # the new values
    assert client.get("/api/runs/alpha/20260101-000000/weights").json() == {"layers": [], "bad_lines": 0}
    assert 'id="weights"' in client.get("/runs/gamma/20260104-000000").text


def test_a_packages_model_is_looked_inside_and_its_explanation_shown(
    tiny_text_package: Path, served_package: Path, tmp_path: Path
) -> None:
    import shutil

    from seekforge.explain import explain, write_explanation
    from tests.conftest import make_tabular

    runs = tmp_path / "runs"
    shutil.copytree(tiny_text_package.parent, runs / "txt" / "20260101-000000")
    shutil.copytree(served_package.parent, runs / "tab" / "20260101-000000")
    tabular = runs / "tab" / "20260101-000000" / "package"
    found = explain(tabular, make_tabular(40, seed=3), rows=6)
    write_explanation(found, tabular.parent / "explain")
    client = studio_client(create_app(runs), raise_server_exceptions=False)
    text_page = client.get("/packages/txt/20260101-000000/package").text
    assert 'id="inside"' in text_page and "studio.insideMaps(" in text_page
    inside = client.get("/api/inside/txt/20260101-000000/package", params={"row": 2}).json()
    assert inside["kind"] == "text" and inside["row"] == 2 and inside["tokens"][0] == "[CLS]"
    (layer,) = inside["attention"]  # one layer, two heads, a row per token summing to 1
    assert len(layer) == 2 and all(sum(r) == pytest.approx(1.0, abs=1e-3) for head in layer for r in head)
    assert len(layer[0]) == len(inside["tokens"])
    missing = client.get("/api/inside/txt/20260101-000000/package", params={"row": 10_000})
    assert missing.status_code == 422 and "held-out rows" in missing.json()["detail"]
    assert client.get("/api/inside/nope/package").status_code == 404
    page = client.get("/packages/tab/20260101-000000/package").text
    assert 'id="inside"' not in page  # a table: nothing inside to draw
    top = found.importance()[0]
    assert "<h2>Explanation</h2>" in page and f"<td>{top[0]}</td>" in page and f"{top[1]:.4f}" in page
    report = client.get("/packages/tab/20260101-000000/package/explain/report")
    assert report.status_code == 200 and report.headers["content-security-policy"] == "sandbox allow-scripts"
    assert client.get("/packages/txt/20260101-000000/package/explain/report").status_code == 404
