from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Literal

import pandas as pd
import pytest
import torch

from seekforge.data import SOURCES, DataSource, read_source
from seekforge.data.config import ReadConfig
from seekforge.models import MODELS, CNNConfig, MLPConfig, ModelConfig, ModelIO, TransformerConfig
from seekforge.testing import check_model_plugin, check_optimizer_plugin, check_source_plugin
from seekforge.train.config import OPTIMIZERS


def test_builtin_models_pass_the_contract() -> None:
    check_model_plugin(MLPConfig)
    check_model_plugin(CNNConfig, ModelIO(output_dim=4, image_shape=(1, 8, 8)))
    check_model_plugin(TransformerConfig, ModelIO(output_dim=2, vocab_size=40, max_length=8))


@pytest.mark.parametrize("name", ["adamw", "sgd", "adafactor", "lamb"])
def test_builtin_optimizers_pass_the_contract(name: str) -> None:
    check_optimizer_plugin(OPTIMIZERS.get(name))


def test_builtin_sources_pass_the_contract(tabular_csv) -> None:
    check_source_plugin(SOURCES.get("csv")(), str(tabular_csv))
    check_source_plugin(SOURCES.get("builtin")(), "builtin:wine")


class LinearConfig(ModelConfig):
    type: Literal["test_linear"] = "test_linear"

    def build(self, io: ModelIO, *, pretrained: bool = True) -> torch.nn.Module:
        return _Linear(io)


class _Linear(torch.nn.Module):
    def __init__(self, io: ModelIO) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(io.numeric_dim, io.output_dim)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.fc(batch["numeric"])


class SilentConfig(LinearConfig):
    type: Literal["test_silent"] = "test_silent"


def test_entry_point_model_plugin_is_found_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    group_calls: list[str] = []

    def fake(group: str) -> list[EntryPoint]:
        group_calls.append(group)
        return [EntryPoint("test_linear", f"{__name__}:LinearConfig", group)] if group == "seekforge.models" else []

    monkeypatch.setattr("seekforge.core.registry.entry_points", fake)
    monkeypatch.setattr(MODELS, "_plugins_loaded", False)
    try:
        assert MODELS.get("test_linear") is LinearConfig
        check_model_plugin(LinearConfig)
    finally:
        MODELS.unregister("test_linear")


def test_contract_catches_an_unregistered_model() -> None:
    with pytest.raises(AssertionError, match="not registered"):
        check_model_plugin(SilentConfig)


class MemorySource(DataSource):
    name = "memory"

    def matches(self, uri: str) -> bool:
        return uri.startswith("memory:")

    def load(self, uri: str, read: ReadConfig) -> pd.DataFrame:
        frame = pd.DataFrame({"a": [1, 2, 3]})
        frame.attrs["source"] = uri
        return frame


def test_source_plugin_is_used_by_read_source() -> None:
    SOURCES.register("memory", MemorySource)
    try:
        check_source_plugin(MemorySource(), "memory:x")
        assert read_source("memory:x")["a"].tolist() == [1, 2, 3]
    finally:
        SOURCES.unregister("memory")
