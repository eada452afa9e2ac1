"""compress refits the preprocessor on the package's data to be sure it trains on the same rows: a package
made before a feature setting existed (absent from its preprocessor.json, at its default) still matches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from seekforge.build import prepare
from seekforge.compress._job import _check_same_data
from seekforge.core.errors import DataError
from seekforge.core.package import read_manifest
from seekforge.recipe import load_recipe


def test_a_setting_added_since_the_package_was_made_is_no_difference(served_package: Path, tmp_path: Path) -> None:
    package = tmp_path / "package"
    shutil.copytree(served_package, package)
    recipe = load_recipe(package / "recipe.yaml")
    prepared = prepare(recipe, tmp_path / "run")
    manifest = read_manifest(package)
    stored = json.loads((package / "preprocessor.json").read_text())
    for feature in stored["features"]["inputs"]:
        feature.pop("scaler", None)  # as an older version wrote it: the setting at its default, unnamed
    (package / "preprocessor.json").write_text(json.dumps(stored))
    _check_same_data(prepared, manifest, package)
    stored["numeric"]["x1"]["center"] += 1.0  # a real difference is still one
    (package / "preprocessor.json").write_text(json.dumps(stored))
    with pytest.raises(DataError, match="the preprocessor fitted again on the package's data differs"):
        _check_same_data(prepared, manifest, package)
