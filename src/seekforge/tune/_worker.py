"""A helper worker process of ``seekforge tune --workers N``: joins the study in a study folder and runs
trials until the study has its count, each within the memory budget the main process planned
(bytes; 0 for none). ``python -m seekforge.tune._worker STUDY_DIR WORKER BUDGET``."""

from __future__ import annotations

import sys
from pathlib import Path

from seekforge.recipe import load_recipe
from seekforge.tune._storage import open_study
from seekforge.tune._study import Objective, ready_file, work


def main(folder: Path, worker: int, budget: int) -> None:
    recipe = load_recipe(folder / "recipe.yaml")
    assert recipe.tune is not None
    study = open_study(recipe, folder, worker=worker)
    ready = ready_file(folder, worker)
    ready.parent.mkdir(exist_ok=True)
    ready.touch()
    try:
        work(study, Objective(recipe, folder, budget or None), recipe.tune.trials, recipe.tune.timeout)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
