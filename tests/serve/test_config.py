from __future__ import annotations

import pytest
from pydantic import ValidationError

from seekforge.serve import ServeConfig


def test_serve_config_is_validated_like_every_section() -> None:
    assert ServeConfig().max_batch_rows == 64
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        ServeConfig(max_batch_rows=0)
    with pytest.raises(
        ValidationError, match="unknown backend 'tensorrt'; choose one of auto, torch, torch-channels-last, onnxruntime"
    ):
        ServeConfig(backend="tensorrt")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ServeConfig.model_validate({"max_batch_row": 8})
    with pytest.raises(ValidationError, match="frozen"):
        ServeConfig().max_wait_ms = 1  # type: ignore[misc]
