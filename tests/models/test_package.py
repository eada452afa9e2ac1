from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from seekforge.core.errors import PackageError
from seekforge.models import build_model


def test_weights_of_another_shape_are_a_package_error(served_package: Path, tmp_path: Path) -> None:
    """model.json and model.safetensors of different models: the fix, not torch's RuntimeError."""
    assert build_model(served_package).training is False
    copy = tmp_path / "package"
    shutil.copytree(served_package, copy)
    spec = json.loads((copy / "model.json").read_text())
    spec["config"]["hidden"] = [h + 3 for h in spec["config"]["hidden"]]
    (copy / "model.json").write_text(json.dumps(spec))
    with pytest.raises(
        PackageError,
        match=r"model.safetensors does not fit model.json: body.0.weight \[\d+, \d+\] where model.json builds",
    ) as info:
        build_model(copy)
    assert "different models" in str(info.value.hint)
