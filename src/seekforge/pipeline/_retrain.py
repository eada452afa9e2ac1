"""``retrain``: a package continued on what it served and what was later learnt to be right: the
prediction log's inputs joined with labels, as a warm start of the package's own recipe."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seekforge.core.errors import ConfigError
from seekforge.core.package import read_manifest
from seekforge.monitor import labelled_log_rows
from seekforge.pipeline._run import RunResult, run


@dataclass(frozen=True)
class Retrained:
    """The new run, and the rows on the way: ``logged``, ``labels``, ``labelled`` (joined), ``duplicates``."""

    run: RunResult
    rows: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": self.run.run_dir,
            "package": self.run.package,
            "metrics": self.run.metrics,
            "rows": self.rows,
        }


def retrain(
    package: str | Path,
    log: str | Path,
    labels: str | Path,
    *,
    since_seconds: float | None = None,
    every_version: bool = False,
    preprocessor: str = "keep",
    replay: float = 0.2,
    overrides: Iterable[str] = (),
    runs_dir: str | Path = "runs",
) -> Retrained:
    """Train the package's own recipe (``recipe.yaml`` in it), warm-started from the package, on its
    logged inputs that have labels.

    Args:
        package: The served package.
        log: Its prediction log (``seekforge serve --log``).
        labels: A table of ``request_id``, optional ``position`` and the output column.
        since_seconds: Only predictions logged this long before the last one.
        every_version: Also rows logged by other versions of the model.
        preprocessor, replay: The warm start's (see ``WarmStartConfig``).
        overrides: ``dotted.key=value`` changes to the package's recipe (``train.epochs=5``).

    Raises:
        DataError: No label matches a logged prediction, labels lack a column, or rows do not fit the recipe.
        ConfigError: An override the recipe refuses.
    """
    package = Path(package).resolve()
    manifest = read_manifest(package)  # a damaged package is refused before the log is read
    if (manifest.get("model") or {}).get("type") == "onnx":
        raise ConfigError(f"{package} is an imported ONNX model; seekforge retrains only the models it trains",
                          hint="retrain it where it was made, then import it again")  # fmt: skip
    table, counts = labelled_log_rows(package, log, labels, since_seconds=since_seconds, every_version=every_version)
    warm = [f"warm_start.package={package}", f"warm_start.preprocessor={preprocessor}", f"warm_start.replay={replay}"]
    result = run(package / "recipe.yaml", overrides=[*warm, *overrides], runs_dir=runs_dir, data=table)
    return Retrained(result, {**counts, "trained_on": len(table)})
