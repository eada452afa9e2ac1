"""Hostile data files: an image that decompresses to gigabytes is refused at the cost of its header in
every stage, with its name and size, and a failed run leaves no run folder that looks like work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from tests.conftest import image_folder_recipe
from tests.security.hostile import refused, seekforge_limited


def _bomb(path: Path, side: int) -> None:
    """A PNG of ``side x side`` black pixels: a few hundred KB on disk, ``side**2`` bytes decoded."""
    Image.new("1", (side, side)).save(path)


def test_an_image_bomb_is_refused_by_its_header_in_training_and_profiling(tmp_path: Path) -> None:
    recipe = image_folder_recipe(tmp_path, per_class=6, epochs=1)
    bomb = tmp_path / "img" / "dark" / "bomb.png"
    _bomb(bomb, 12_000)
    assert bomb.stat().st_size < 1_000_000
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))

    message = refused(seekforge_limited("run", "recipe.yaml", cwd=tmp_path), str(bomb), "12,000 x 12,000")
    assert "more than the limit of 16,777,216 pixels" in message
    assert not (tmp_path / "runs" / "img").exists() or not any((tmp_path / "runs" / "img").iterdir())

    profile = seekforge_limited("data", "profile", "-i", str(tmp_path / "img"), "-o", "profile.html", cwd=tmp_path)
    assert profile.returncode == 0, profile.stderr
    assert "1 images larger than the pixel limit" in profile.stdout and "bomb.png" in profile.stdout
    assert "DecompressionBombWarning" not in profile.stderr


def test_the_pixel_limit_is_raised_by_flag_for_a_trusted_file(tmp_path: Path) -> None:
    recipe = image_folder_recipe(tmp_path, per_class=6, epochs=1)
    _bomb(tmp_path / "img" / "dark" / "large.png", 300)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    refused(seekforge_limited("--max-image-pixels", "10000", "run", "recipe.yaml", cwd=tmp_path), "300 x 300")
    proc = seekforge_limited("--max-image-pixels", "90000", "run", "recipe.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_nested_parquet_columns_are_profiled_as_text_and_refused_as_features(tmp_path: Path) -> None:
    from seekforge.data.quality import profile

    frame = pd.DataFrame({"x": np.arange(40.0), "tags": [[1, 2]] * 40, "meta": [{"a": 1}] * 40, "y": ["a", "b"] * 20})
    frame.to_parquet(tmp_path / "nested.parquet")
    found = profile(tmp_path / "nested.parquet", label="y")
    assert found["columns"]["tags"]["nested"] == 40 and found["columns"]["meta"]["nested"] == 40
    assert any("'meta' holds lists or objects in 40 cells" in w for w in found["warnings"])
    recipe = {
        "name": "nested",
        "data": {"source": "nested.parquet"},
        "features": {"inputs": [{"name": "x", "type": "numeric"}, {"name": "tags", "type": "category"}],
                     "output": {"name": "y", "type": "category"}},
        "model": {"type": "mlp"},
    }  # fmt: skip
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    refused(seekforge_limited("run", "recipe.yaml", cwd=tmp_path), "row 1: 'tags' holds a ndarray ([1, 2])", "40 such")
    assert not (tmp_path / "runs" / "nested").exists() or not any((tmp_path / "runs" / "nested").iterdir())


def test_a_bad_json_line_is_named_by_its_line(tmp_path: Path) -> None:
    from seekforge.core.errors import DataError
    from seekforge.data import read_source

    path = tmp_path / "rows.jsonl"
    path.write_text('{"x": 1}\n\n{"x": 2}\n{"x": }\n')
    with pytest.raises(DataError, match=r"rows\.jsonl line 4: not valid JSON"):
        read_source(str(path))
    path.write_text('{"x": 1}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"rows\.jsonl line 2: a JSON list, not an object"):
        read_source(str(path))
