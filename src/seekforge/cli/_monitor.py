"""``seekforge monitor``: the drift (and, with labels, the live metrics) of what a package served."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from seekforge.monitor import MonitorResult

from seekforge.cli._common import JsonFlag, err, out, print_json
from seekforge.core.errors import SeekforgeError


def monitor(
    package: Annotated[Path, typer.Argument(help="The served model package.")],
    log: Annotated[Path, typer.Option("--log", help="Prediction log written by seekforge serve.")],
    window: Annotated[
        str | None, typer.Option("--window", help="Window length, e.g. 1h or 7d; default: the whole log.")
    ] = None,
    windows: Annotated[int, typer.Option("--windows", min=1, help="How many windows back to report.")] = 1,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Labels: request_id[, position] and the output column.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML monitor section; default: the package recipe's.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Override a monitor setting: key=value or monitor.key=value (repeatable)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Report folder; default: monitor-<stamp> by the log.")
    ] = None,
    notify_url: Annotated[
        str | None, typer.Option("--notify", help="POST the verdict as JSON to this URL (a webhook).")
    ] = None,
    push: Annotated[
        str | None, typer.Option("--push", help="Push drift gauges to this Prometheus Pushgateway URL.")
    ] = None,
    metrics_file: Annotated[
        Path | None, typer.Option("--metrics-file", help="Write drift gauges here (*.prom, node_exporter textfile).")
    ] = None,
    on_drift: Annotated[
        str | None,
        typer.Option("--on-drift", help="Run this shell command when the latest window drifts (e.g. a retrain)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Drift of the logged inputs and predictions against the training data's sketch; live metrics once
    labels arrive. Exits 0 for no drift, 1 when the latest window drifts, 3 when it has too few rows, and 4
    when the --on-drift command failed.

    --on-drift runs its command (in a shell, in this directory) after the report is written, with
    SEEKFORGE_PACKAGE, SEEKFORGE_LOG, SEEKFORGE_REPORT (the report folder) and SEEKFORGE_DRIFTED (the
    drifted features, comma-separated) in its environment."""
    import yaml

    from seekforge.core.config import parse_duration
    from seekforge.core.config_file import load_config
    from seekforge.core.io import stamped_folder
    from seekforge.monitor import MonitorConfig, check_targets, monitor_package

    check_targets(push=push, metrics_file=metrics_file)

    overrides = [item.removeprefix("monitor.") for item in set_ or ()]  # the recipe's spelling works too
    if config is not None:
        monitor_config = load_config(config, MonitorConfig, what="monitor configuration", overrides=overrides)
    else:
        recipe_file = package / "recipe.yaml"
        section = (
            (yaml.safe_load(recipe_file.read_text(encoding="utf-8")) or {}).get("monitor")
            if recipe_file.is_file()
            else None
        )
        monitor_config = load_config(section or {}, MonitorConfig, what="monitor section", overrides=overrides)
    seconds = parse_duration(window, what="--window") if window else None
    folder = output or stamped_folder(log.parent, "monitor-")
    result = monitor_package(
        package, log, window_seconds=seconds, windows=windows, labels=labels, config=monitor_config, output=folder
    )
    if as_json:
        print_json({**result.to_dict(), "output": folder})
    else:
        _print_monitor(result)
    err.print(f"wrote {folder}/monitor.html and monitor.json", markup=False)
    from seekforge.monitor import notify, push_drift, verdict_message, write_drift_textfile

    failed: list[SeekforgeError] = []  # every target is tried, so one that is down silences no other
    for wanted, send, done in (
        (notify_url, lambda: notify(notify_url or "", verdict_message(result)), f"notified {notify_url}"),
        (push, lambda: push_drift(push or "", result), f"pushed drift gauges to {push}"),
        (metrics_file, lambda: write_drift_textfile(metrics_file, result), f"wrote {metrics_file}"),  # type: ignore[arg-type]
    ):
        if wanted is None:
            continue
        try:
            send()
            err.print(done, markup=False)
        except SeekforgeError as exc:
            failed.append(exc)
    code = 0
    if on_drift is not None and result.drift:  # also when a target above was down: the retrain is not lost
        code = _run_on_drift(on_drift, package, log, folder, result.current.drift.drifted_features)
    for exc in failed[:-1] if not code else failed:
        err.print(f"error: {exc.message}", markup=False)
    if code:
        err.print(f"error: the --on-drift command exited {code}", markup=False)
        raise typer.Exit(4)
    if failed:
        raise failed[-1]
    if result.status != "no drift":
        raise typer.Exit(1 if result.drift else 3)


def _print_monitor(result: MonitorResult) -> None:
    current = result.current
    span = current.to_dict()
    table = Table("feature", "type", "test", "statistic", "threshold", "drift", title=escape(
        f"{result.version}: {current.drift.rows} rows from {span['start']} to {span['end']}"))  # fmt: skip
    for feature in current.drift.features:
        found = [(feature.name, feature.test, feature.statistic, feature.threshold, feature.drifted)]
        if (emb := feature.embedding) is not None:  # the feature's row says whether it drifted either way
            found.append((f"{feature.name} (embeddings)", emb.test, emb.statistic, emb.threshold, emb.drifted))
        for name, test, statistic, threshold, drifted in found:
            table.add_row(
                escape(name), feature.type, test, "" if statistic is None else f"{statistic:.4g}",
                f"{threshold:g}", "[bold red]yes[/]" if drifted else "no",
            )  # fmt: skip
    out.print(table)
    if len(result.windows) > 1:
        trend = ", ".join(f"{w.drift.drifted_count}/{len(w.drift.features)}" for w in result.windows)
        out.print(f"drifted features per window, oldest first: {trend}", markup=False)
    if current.live_metrics:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in current.live_metrics.items() if not k.startswith("rows"))
        test = ", ".join(f"{k} {v:.4f}" for k, v in result.test_metrics.items() if k in current.live_metrics)
        out.print(f"live metrics on {current.labelled} labelled rows: {shown} (test split: {test})", markup=False)
    state = result.state
    if state.killed_sessions or state.dropped_rows:
        err.print(f"the log lost {state.lost_rows} rows in {state.killed_sessions} killed sessions and dropped "
                  f"{state.dropped_rows} when its queue was full", markup=False)  # fmt: skip
    out.print(result.verdict, markup=False)


def _run_on_drift(command: str, package: Path, log: Path, report: Path, drifted: list[str]) -> int:
    """Run the --on-drift command with what drifted in its environment; its exit code."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "SEEKFORGE_PACKAGE": str(package), "SEEKFORGE_LOG": str(log),
           "SEEKFORGE_REPORT": str(report), "SEEKFORGE_DRIFTED": ",".join(drifted)}  # fmt: skip
    err.print(f"drift: running --on-drift: {command}", markup=False, soft_wrap=True)
    # its output goes to stderr: stdout holds the verdict (--json), which nothing may follow
    code = subprocess.run(command, shell=True, env=env, stdout=sys.stderr, check=False).returncode
    if code == 0:
        err.print("the --on-drift command finished", markup=False)
    return code
