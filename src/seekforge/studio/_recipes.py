"""Building a recipe in the studio: every problem of a draft with its dotted path and the message
``seekforge validate`` prints, a preview of a data file, a draft recipe from it, and the recipe saved as
YAML and run in the background (``seekforge run``, its own process, its output in a log beside it).

Data files are read only under ``data_root`` (the folder the studio was started in, unless told
otherwise): a page cannot make the studio read any file on the machine."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from seekforge.core.errors import ConfigError
from seekforge.runtime import is_missing

PREVIEW_ROWS = 10


def check_recipe(draft: Any) -> dict[str, Any]:
    """``{"problems": [{path, message, suggestion}], "yaml": text}`` of a draft recipe (a mapping)."""
    from seekforge.recipe import load_recipe

    text = yaml.safe_dump(draft, sort_keys=False, allow_unicode=True) if isinstance(draft, dict) else ""
    try:
        load_recipe(draft)
    except ConfigError as exc:
        problems = [{"path": i.path, "message": i.message, "suggestion": i.suggestion} for i in exc.issues]
        return {"problems": problems or [{"path": "", "message": exc.message, "suggestion": None}], "yaml": text}
    return {"problems": [], "yaml": text}


def data_file(data_root: Path, source: str) -> Path:
    """The file ``source`` names (relative to ``data_root``), when it is one under ``data_root``.

    Raises:
        ConfigError: It is outside, or not a file.
    """
    if source.startswith("builtin:"):
        raise ConfigError(
            f"{source} is a built-in data set: it needs no preview here", hint="see seekforge datasets list"
        )
    path = (data_root / source).resolve()
    if not path.is_relative_to(data_root.resolve()):
        raise ConfigError(f"{source} is outside {data_root}, the folder this studio reads data from",
                          hint="start the studio with --data-root at a folder holding it")  # fmt: skip
    if not path.is_file():
        raise ConfigError(f"{source}: no such file under {data_root}")
    return path


def preview(data_root: Path, source: str) -> dict[str, Any]:
    """The first rows of a data file and each column's inferred type, missing share and distinct count."""
    from seekforge.data import infer_type, read_source

    path = data_file(data_root, source)
    frame = read_source(str(path))
    head = frame.head(PREVIEW_ROWS)
    columns = []
    for name in frame.columns:
        column = frame[name]
        columns.append({"name": str(name), "type": infer_type(column), "missing": float(column.isna().mean()),
                        "distinct": int(column.nunique(dropna=True))})  # fmt: skip
    rows = [[None if is_missing(v) else str(v)[:200] for v in row] for row in head.itertuples(index=False)]
    return {"source": source, "rows_total": len(frame), "columns": columns, "rows": rows}


def draft_from(data_root: Path, source: str, label: str) -> dict[str, Any]:
    """A draft recipe for a data file and the column to predict, as ``seekforge init --from`` writes it."""
    from seekforge.recipe import draft_recipe

    path = data_file(data_root, source)
    text = draft_recipe(path, label, written_to=data_root / "recipe.yaml")
    return yaml.safe_load(text)


def start_run(draft: Any, *, recipes: Path, runs: Path, data_root: Path) -> tuple[dict[str, Any], Any]:
    """Save the recipe as YAML under ``recipes`` and start ``seekforge run`` on it in the background; data
    paths, given relative to ``data_root``, are written relative to the recipe's folder, as a recipe's
    paths are read.

    Returns:
        Where the recipe and the run's log went and the run's process id; and the process.

    Raises:
        ConfigError: The recipe is invalid (every problem listed).
    """
    from seekforge.recipe import load_recipe

    recipe = load_recipe(draft)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    recipes.mkdir(parents=True, exist_ok=True)
    path = recipes / f"{recipe.name}-{stamp}.yaml"
    saved = {**draft, "data": dict(draft.get("data") or {})}
    for key in ("source", "test"):
        value = saved["data"].get(key)
        if isinstance(value, str) and value and not value.startswith("builtin:") and not Path(value).is_absolute():
            saved["data"][key] = os.path.relpath(data_root.resolve() / value, recipes.resolve())
    text = yaml.safe_dump(saved, sort_keys=False, allow_unicode=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # the saved recipe is whole or absent
    log = path.with_suffix(".log")
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1"}
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "seekforge", "run", str(path.resolve()), "--runs-dir", str(runs.resolve())],
            cwd=data_root, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )  # fmt: skip
    return {"recipe": str(path), "log": str(log), "pid": process.pid, "name": recipe.name, "started": stamp}, process
