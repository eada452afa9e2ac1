"""The studio in a real browser (Debian's chromium, driven by Selenium): each page loads without a
script error, the numbers shown are the files' own, a run's chart grows while it trains, runs compare.

Chromium comes from the system (``make test`` installs it where it can: scripts/ensure-chromium); where
it is missing the tests fail under CI and are skipped elsewhere, with the command that installs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.studio.test_studies import write_study
from tests.studio.test_studio import weights_line, write_run

SCREENSHOTS = os.environ.get("SEEKFORGE_SCREENSHOTS")  # a folder: save a screenshot of each page there


def _browser() -> Any:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        message = (
            "the browser tests need Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver))


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Any]]:
    root = tmp_path_factory.mktemp("browser") / "runs"
    write_run(root, "digits", "20260101-090000", epochs=12, test=0.9722, age=7200)
    write_run(root, "digits", "20260101-100000", epochs=9, model="cnn", test=0.9861, age=3600)
    live = write_run(root, "live", "20260102-080000", epochs=3)
    (live / "weights.jsonl").write_text("".join(weights_line(e, 1.0 + e / 10) for e in (1, 2, 3)))
    write_study(root, "digits", "tune-20260101-110000", trials=40)
    browser = _browser()
    proc = subprocess.Popen([sys.executable, "-m", "seekforge", "studio", "--runs", str(root), "--port", "0"],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "SEEKFORGE_NO_PROGRESS": "1"})  # fmt: skip
    try:
        found = re.search(r"http://127\.0\.0\.1:\d+", proc.stderr.readline() if proc.stderr else "")
        assert found, "the studio printed no address"
        yield found.group(0), root, browser
    finally:
        browser.quit()
        proc.terminate()
        proc.communicate(timeout=10)


def _open(browser: Any, url: str, name: str | None = None) -> None:
    browser.get(url)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    if SCREENSHOTS and name:
        browser.save_screenshot(str(Path(SCREENSHOTS) / f"studio-{name}.png"))


def _wait(condition: Any, seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the page never got there")


def test_the_runs_table_shows_the_files_numbers_and_runs_compare(studio: tuple[str, Path, Any]) -> None:
    url, root, browser = studio
    _open(browser, url + "/", "runs")
    rows = {r.get_attribute("data-run"): r.text for r in browser.find_elements("css selector", "tr[data-run]")}
    assert list(rows) == ["live/20260102-080000", "digits/20260101-100000", "digits/20260101-090000"]
    for run_id, text in rows.items():
        lines = (root / run_id / "metrics.jsonl").read_text().splitlines()
        last = json.loads(lines[-1])
        assert f" {len(lines)} " in f" {text} " and f"val_accuracy {last['val_accuracy']:.4f}" in text, text
    assert "accuracy 0.9861" in rows["digits/20260101-100000"] and "running" in rows["live/20260102-080000"]
    for box in browser.find_elements("css selector", "input[name=run]")[1:]:
        box.click()
    browser.find_element("id", "compare-button").click()
    _wait(lambda: len(browser.find_elements("css selector", ".chart canvas")) >= 4)
    diff = browser.find_element("css selector", "pre.diff").text
    assert "-  type: cnn" in diff and "+  type: mlp" in diff  # the newer run's recipe against the older's
    if SCREENSHOTS:
        browser.save_screenshot(str(Path(SCREENSHOTS) / "studio-compare.png"))


def test_a_running_runs_chart_grows_within_two_seconds(studio: tuple[str, Path, Any]) -> None:
    url, root, browser = studio
    _open(browser, url + "/runs/live/20260102-080000", "run")
    charts = _wait(lambda: browser.find_elements("css selector", "#charts .chart"))
    titles = [c.get_attribute("data-chart") for c in charts]
    assert titles[:3] == ["loss", "learning rate", "validation metrics"], titles
    assert browser.find_element("id", "epochs").text == "3"
    time.sleep(0.5)  # the event stream is open
    with (root / "live" / "20260102-080000" / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"epoch": 4, "train_loss": 0.2, "lr": 0.01, "val_loss": 0.3, "val_accuracy": 0.61}) + "\n")
    written = time.monotonic()
    _wait(lambda: browser.find_element("id", "epochs").text == "4", seconds=5)
    assert time.monotonic() - written < 2.0
    points = browser.execute_script("return document.querySelector('.chart .u-legend') !== null")
    assert points
    layers = [o.get_attribute("value") for o in browser.find_elements("css selector", "#weights-layer option")]
    assert layers == ["encoder.weight", "encoder.bias"]
    titles = "return [...document.querySelectorAll('#weights-charts .chart')].map((c) => c.dataset.chart)"  # redrawn
    _wait(lambda: browser.execute_script(titles) == ["encoder.weight: values by epoch",
          "encoder.weight: gradient norm and spread", "encoder.weight: histogram"])  # fmt: skip
    with (root / "live" / "20260102-080000" / "weights.jsonl").open("a") as f:  # the next epoch's weights first
        f.write(weights_line(5, 2.0))
    with (root / "live" / "20260102-080000" / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"epoch": 5, "train_loss": 0.1, "lr": 0.01}) + "\n")
    _wait(lambda: browser.find_element("id", "weights-shown").text == "epoch 5 of 5", seconds=5)
    assert browser.find_element("id", "weights-epoch").get_attribute("max") == "3"  # epochs 1, 2, 3 and 5 recorded
    browser.execute_script("const s = document.getElementById('weights-layer'); s.value = 'encoder.bias';"
                           "s.dispatchEvent(new Event('change'));")  # fmt: skip
    _wait(lambda: browser.execute_script(titles)[:1] == ["encoder.bias: values by epoch"])
    if SCREENSHOTS:
        browser.execute_script("document.getElementById('weights').scrollIntoView()")
        browser.save_screenshot(str(Path(SCREENSHOTS) / "studio-weights.png"))


def test_studies_and_packages_pages_load(studio: tuple[str, Path, Any]) -> None:
    url, _, browser = studio
    _open(browser, url + "/studies", "studies")
    assert "40" in browser.find_element("css selector", "table.runs tbody").text
    _open(browser, url + "/studies/digits/tune-20260101-110000", "study")
    drawn = "return [...document.querySelectorAll('.chart')].filter((c) => c.querySelector('canvas')).map((c) => c.dataset.chart)"
    charts = _wait(lambda: (c := browser.execute_script(drawn)) and c[-1].startswith("parameter importance") and c)
    assert charts[0] == "optimisation history" and charts[-1] == "parameter importance (fANOVA, 32 complete trials)"
    assert charts[1] == "parallel coordinates (32 of 32 complete trials; darker: better)"
    if SCREENSHOTS:
        browser.save_screenshot(str(Path(SCREENSHOTS) / "studio-study.png"))
    assert len(browser.find_elements("css selector", "tr[data-trial]")) == 40 or "1–50" not in browser.page_source
    _open(browser, url + "/packages", "packages")
    assert "digits/20260101-100000/package" in browser.find_element("css selector", "table.runs").text
    _open(browser, url + "/packages/digits/20260101-100000/package")
    assert "accuracy 0.9861" in browser.page_source


def test_serving_and_drift_pages_read_a_running_server_and_its_log(served_package: Path, tmp_path: Path) -> None:
    import httpx

    from seekforge.serve import ServeConfig
    from tests.conftest import make_tabular
    from tests.serve.conftest import running

    log = tmp_path / "predictions.db"
    records = make_tabular(200, seed=5).drop(columns=["label"]).assign(x1=lambda f: f["x1"] + 4.0)
    browser = _browser()
    with running(served_package, ServeConfig(max_wait_ms=1, log=log), grpc=False) as (_, where):
        server = f"http://127.0.0.1:{where.http_port}"
        for start in (0, 100):
            body = {"records": records.iloc[start : start + 100].to_dict(orient="records")}
            assert httpx.post(f"{server}/v1/predict", json=body, timeout=30).status_code == 200
        command = [sys.executable, "-m", "seekforge", "studio", "--runs", str(tmp_path), "--port", "0",
                   "--server", server, "--log", str(log)]  # fmt: skip
        proc = subprocess.Popen(
            command, stderr=subprocess.PIPE, text=True, env={**os.environ, "SEEKFORGE_NO_PROGRESS": "1"}
        )
        try:
            found = re.search(r"http://127\.0\.0\.1:\d+", proc.stderr.readline() if proc.stderr else "")
            assert found
            _open(browser, found.group(0) + "/serving", "serving")
            facts = _wait(lambda: (t := browser.find_element("id", "server-0-facts").text).startswith("serving") and t)
            assert "2 requests" in facts and "primary" in facts
            assert len(_wait(lambda: browser.find_elements("css selector", "#server-0-charts .chart"))) == 5
            time.sleep(1.0)  # the log is written off the request path
            _open(browser, found.group(0) + "/drift?window=86400&windows=1", "drift")
            _wait(lambda: browser.find_elements("css selector", "#log-0-table td"))
            rows = {
                r.find_element("css selector", "td").text: r
                for r in browser.find_elements("css selector", "#log-0-table tbody tr")
            }
            assert "drifted" in rows["x1"].find_elements("css selector", "td")[1].get_attribute("class")
            assert "drifted" not in rows["x2"].find_elements("css selector", "td")[1].get_attribute("class")
            from seekforge.registry import Registry

            run = tmp_path / "tabular" / "20260101-000000"
            shutil.copytree(served_package.parent, run)
            registry = Registry(tmp_path / "registry.db")  # where the studio looks: $SEEKFORGE_REGISTRY (conftest)
            registry.promote("tabular", registry.register(run / "package", name="tabular"))
            _open(browser, found.group(0) + "/registry", "registry")
            version = browser.find_element("css selector", "#tabular tr[data-version='1']").text
            assert "champion" in version and "tabular/20260101-000000/package" in version
            _open(browser, found.group(0) + "/packages/tabular/20260101-000000/package", "package")
            nodes = [n.text.split("\n")[0] for n in browser.find_elements("css selector", "ol.flow .node")]
            assert nodes == ["DATA", "RUN", "TRAINED", "EXPORTS", "REGISTRY"], nodes
        finally:
            browser.quit()
            proc.terminate()
            proc.communicate(timeout=10)


def test_a_recipe_built_in_the_form_is_saved_run_and_its_curve_grows(tmp_path: Path) -> None:
    from tests.conftest import make_tabular

    (tmp_path / "data").mkdir()
    make_tabular(300).to_csv(tmp_path / "data" / "shop.csv", index=False)
    browser = _browser()
    command = [sys.executable, "-m", "seekforge", "studio", "--runs", "runs", "--port", "0"]
    proc = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SEEKFORGE_NO_PROGRESS": "1"})  # fmt: skip
    try:
        found = re.search(r"http://127\.0\.0\.1:\d+", proc.stderr.readline() if proc.stderr else "")
        assert found
        _open(browser, found.group(0) + "/new")
        problems = _wait(lambda: (t := browser.find_element("id", "problems").text) != "checking…" and t)
        assert "features.output.name" in problems or "data.source" in problems  # an empty draft says what is missing
        name = browser.find_element("css selector", '[data-path="name"]')
        name.clear()
        name.send_keys("bad name!")
        _wait(lambda: "name" in browser.find_element("css selector", ".problem").find_element("xpath", "..").text)
        browser.find_element("id", "data-source").send_keys("../../etc/passwd")
        browser.find_element("id", "preview-button").click()
        assert "outside" in _wait(lambda: browser.find_element("id", "data-problem").text)
        source = browser.find_element("id", "data-source")
        source.clear()
        source.send_keys("data/shop.csv")
        browser.find_element("id", "preview-button").click()
        _wait(lambda: browser.find_elements("css selector", "#data-preview td"))
        assert "300 rows" in browser.find_element("id", "data-preview").text
        assert browser.find_element("id", "label-column").get_attribute("value") == "label"
        browser.find_element("id", "draft-button").click()
        _wait(lambda: browser.find_element("id", "problems").text == "none: the recipe is valid")
        yaml_text = browser.find_element("id", "recipe-yaml").text
        assert "source: data/shop.csv" in yaml_text and "name: label" in yaml_text
        epochs = browser.find_element("css selector", '[data-path="train.epochs"]')
        epochs.clear()
        epochs.send_keys("4")
        _wait(lambda: "epochs: 4" in browser.find_element("id", "recipe-yaml").text)
        if SCREENSHOTS:
            browser.save_screenshot(str(Path(SCREENSHOTS) / "studio-new-recipe.png"))
        scripts = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and e["source"] != "network"]
        assert not scripts, scripts  # (the refused preview's 422 is a network entry, as it should be)
        browser.find_element("id", "run-button").click()
        _wait(lambda: "/runs/shop/" in browser.current_url, seconds=60)
        _wait(lambda: browser.find_element("id", "epochs").text == "4", seconds=120)  # grew while it trained
        _wait(lambda: browser.find_elements("css selector", "#weights-charts .chart"))  # the trainer's histograms
        (written,) = (tmp_path / "runs" / "shop").glob("*/weights.jsonl")
        layers = json.loads(written.read_text().splitlines()[-1])["layers"]
        assert [
            o.get_attribute("value") for o in browser.find_elements("css selector", "#weights-layer option")
        ] == list(layers)
        saved = list((tmp_path / "recipes").glob("shop-*.yaml"))
        assert len(saved) == 1
        check = subprocess.run([sys.executable, "-m", "seekforge", "validate", str(saved[0])], cwd=tmp_path,
                               capture_output=True, text=True)  # fmt: skip
        assert check.returncode == 0, check.stderr  # the CLI takes the saved recipe unchanged
    finally:
        browser.quit()
        proc.terminate()
        proc.communicate(timeout=10)


def test_a_text_models_attention_is_drawn_for_a_held_out_row(tiny_text_package: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_text_package.parent, tmp_path / "runs" / "txt" / "20260101-000000")
    browser = _browser()
    command = [sys.executable, "-m", "seekforge", "studio", "--runs", str(tmp_path / "runs"), "--port", "0"]
    proc = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env={**os.environ, "SEEKFORGE_NO_PROGRESS": "1"}
    )
    try:
        found = re.search(r"http://127\.0\.0\.1:\d+", proc.stderr.readline() if proc.stderr else "")
        assert found
        _open(browser, found.group(0) + "/packages/txt/20260101-000000/package")
        caption = "return document.querySelector('#inside-maps figcaption')?.textContent"
        assert _wait(lambda: browser.execute_script(caption)).startswith("layer 1, the mean of its heads")
        facts = browser.find_element("id", "inside-facts").text
        assert re.match(r"of \d+: predicted (great|other) \(score \d\.\d{3}\), label (great|other)", facts), facts
        browser.execute_script("const h = document.getElementById('inside-head'); h.value = '1';"
                               "h.dispatchEvent(new Event('change'));")  # fmt: skip
        assert browser.execute_script(caption).startswith("layer 1, head 2:")
        browser.execute_script(  # the pointer over the first cell
            "const c = document.querySelector('#inside-maps canvas'), r = c.getBoundingClientRect();"
            "c.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + 93, clientY: r.top + 73, bubbles: true}));"
        )
        assert "[CLS] → [CLS]:" in browser.execute_script(caption)
        if SCREENSHOTS:
            browser.execute_script("document.getElementById('inside').scrollIntoView()")
            browser.save_screenshot(str(Path(SCREENSHOTS) / "studio-inside.png"))
        row = browser.find_element("id", "inside-row")
        row.clear()
        row.send_keys("3\n")
        _wait(lambda: browser.find_element("id", "inside-facts").text != facts or None, seconds=5)
    finally:
        browser.quit()
        proc.terminate()
        proc.communicate(timeout=10)
