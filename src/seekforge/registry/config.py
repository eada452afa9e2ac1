"""The recipe's ``gates:`` section: what a trained package must show before ``seekforge pipeline``
promotes it in the registry."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from seekforge.core.config import BaseConfig


class VsChampionGate(BaseConfig):
    """The headline metric (accuracy, or R2) on the same held-out rows may fall at most ``max_drop`` below
    the current champion's."""

    max_drop: Annotated[float, Field(ge=0.0)] = 0.0


class LatencyGate(BaseConfig):
    """The model's p99 latency at ``batch`` rows (the backend it would be served with) at most ``p99_ms``."""

    p99_ms: Annotated[float, Field(gt=0.0)]
    batch: Annotated[int, Field(ge=1, le=4096)] = 1


class GatesConfig(BaseConfig):
    """Attributes:
    min, max: Test metrics and their lowest (``accuracy: 0.9``) or highest (``rmse: 12``) allowed value.
    vs_champion: Against the registry's champion on the same test rows.
    latency: A p99 latency limit.
    fairness: The recipe's fairness gate must pass (when it has one).
    parity: The fp32 ONNX export (made here when the package has none) must pass its parity gate against
        the torch model on the package's held-out rows: what the server will run agrees with what was tested.
    """

    min: dict[str, float] = {}
    max: dict[str, float] = {}
    vs_champion: VsChampionGate | None = None
    latency: LatencyGate | None = None
    fairness: bool = True
    parity: bool = False

    def problems(self, metrics: list[str]) -> list[str]:
        """Metrics the gates name that the run does not measure."""
        named = [(f"gates.{side}", m) for side in ("min", "max") for m in getattr(self, side)]
        return [f"{where}: '{m}' is not a test metric of this task; choose from {', '.join(metrics)}"
                for where, m in named if m not in metrics]  # fmt: skip
