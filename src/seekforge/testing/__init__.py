"""Contract checks for plugins: run them in a plugin's own test suite.

Example:
    >>> from seekforge.testing import check_model_plugin
    >>> check_model_plugin(MyNetConfig)

Each check raises ``AssertionError`` with the broken rule.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from seekforge.core.config import PluggableConfig
from seekforge.data.config import ReadConfig
from seekforge.models.config import MODELS, ModelConfig, ModelIO
from seekforge.train.config import OPTIMIZERS, OptimizerConfig

__all__ = ["check_model_plugin", "check_optimizer_plugin", "check_source_plugin", "sample_batch"]


def _check_config(cls: type[PluggableConfig], base: type[PluggableConfig], registry: Any, kind: str) -> str:
    assert isinstance(cls, type) and issubclass(cls, base), f"{cls!r} must subclass {base.__name__}"
    field = cls.model_fields.get("type")
    assert field is not None and isinstance(field.default, str), f"{cls.__name__}.type needs a string default"
    name = field.default
    assert name in registry, f"{kind} '{name}' is not registered (decorate with @{kind.upper()}S.register)"
    assert registry.get(name) is cls, f"'{name}' is registered to {registry.get(name)!r}, not {cls!r}"
    config = cls()
    again = cls.model_validate(config.model_dump(mode="json"))
    assert again == config, f"{cls.__name__} does not survive a JSON round trip"
    try:
        cls.model_validate({"type": name, "__no_such_key__": 1})
    except ValueError:
        pass
    else:
        raise AssertionError(f"{cls.__name__} accepts unknown keys; derive from the seekforge base config")
    return name


def sample_batch(io: ModelIO, rows: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random batch shaped like what the preprocessor feeds a model with ``io``."""
    gen = torch.Generator().manual_seed(seed)
    batch: dict[str, torch.Tensor] = {}
    if io.numeric_dim:
        batch["numeric"] = torch.randn(rows, io.numeric_dim, generator=gen)
    if io.category_cardinalities:
        batch["category"] = torch.stack(
            [torch.randint(0, c, (rows,), generator=gen) for c in io.category_cardinalities], dim=1
        )
    if io.image_shape:
        batch["image"] = torch.randn(rows, *io.image_shape, generator=gen)
    if io.vocab_size and io.max_length:
        batch["input_ids"] = torch.randint(4, io.vocab_size, (rows, io.max_length), generator=gen)
        batch["attention_mask"] = torch.ones(rows, io.max_length, dtype=torch.int64)
    return batch


def check_model_plugin(cls: type[ModelConfig], io: ModelIO | None = None) -> None:
    """A model plugin builds from its defaults, maps a batch to ``[rows, output_dim]`` logits, learns
    (gradients reach its parameters), rebuilds identically from its JSON config, and is deterministic."""
    _check_config(cls, ModelConfig, MODELS, "model")
    io = io or ModelIO(output_dim=3, numeric_dim=5, category_cardinalities=(4,))
    config = cls()
    torch.manual_seed(0)
    model = config.build(config.prepare_io(io))
    batch = sample_batch(io)
    model.train()
    logits = model(batch)
    assert tuple(logits.shape) == (4, io.output_dim), f"logits shape {tuple(logits.shape)}, want (4, {io.output_dim})"
    logits.float().sum().backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable, "the model has no trainable parameters"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable), "no gradient reached the parameters"
    rebuilt = cls.model_validate(config.model_dump(mode="json")).build(config.prepare_io(io), pretrained=False)
    rebuilt.load_state_dict(model.state_dict())
    model.eval()
    rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(model(batch), rebuilt(batch)), "a model rebuilt from its config predicts differently"
        assert torch.equal(model(batch), model(batch)), "eval-mode predictions are not deterministic"


def check_optimizer_plugin(cls: type[OptimizerConfig]) -> None:
    """An optimizer plugin builds over parameters, lowers a simple quadratic loss, and round-trips its state."""
    _check_config(cls, OptimizerConfig, OPTIMIZERS, "optimizer")
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(8))
    optimizer = cls().build([weight], lr=0.05)
    assert isinstance(optimizer, torch.optim.Optimizer), "build must return a torch.optim.Optimizer"
    start = float((weight.detach() ** 2).sum())
    for _ in range(50):
        optimizer.zero_grad()
        (weight**2).sum().backward()
        optimizer.step()
    assert float((weight.detach() ** 2).sum()) < start, "50 steps did not lower sum(w^2)"
    state = optimizer.state_dict()
    fresh = cls().build([torch.nn.Parameter(weight.detach().clone())], lr=0.05)
    fresh.load_state_dict(state)


def check_source_plugin(source: Any, uri: str) -> None:
    """A data source claims ``uri`` and loads it into a non-empty DataFrame that names its source."""
    assert source.matches(uri), f"{source!r} does not claim {uri!r}"
    frame = source.load(uri, ReadConfig())
    assert isinstance(frame, pd.DataFrame), "load must return a pandas DataFrame"
    assert len(frame) > 0, "load returned no rows"
    assert frame.attrs.get("source"), "set frame.attrs['source'] so errors can name where the data came from"
