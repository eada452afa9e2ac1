"""The recipe's ``federated`` section: how the training rows are split into sites, how many rounds, which
Flower strategy aggregates the sites' weights, and optional client-side differential privacy."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from seekforge.core.config import BaseConfig
from seekforge.core.errors import ConfigError


class DirichletSites(BaseConfig):
    """``clients`` sites whose label mix is drawn from Dirichlet(``alpha``): small alpha, skewed sites."""

    clients: Annotated[int, Field(ge=2, le=1000)]
    alpha: Annotated[float, Field(gt=0)] = 0.5
    #: a site gets at least this many rows (the draw is repeated until each has them)
    min_rows: Annotated[int, Field(ge=1)] = 10


#: a remote site's name: also the name of its key files
SITE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SiteName = Annotated[str, Field(pattern=SITE_NAME)]


def check_site_name(name: str) -> str:
    """``name`` if it can name a site (and its key files).

    Raises:
        ConfigError: It cannot.
    """
    if not re.fullmatch(SITE_NAME, name):
        raise ConfigError(f"site name {name!r}: use letters, digits, '.', '_' and '-' (up to 64, the first a letter "
                          "or digit)", hint="it names the site's key files too")  # fmt: skip
    return name


class SitesConfig(BaseConfig):
    """Which site each training row belongs to: ``by`` a column naming it (each value a site, as hospitals
    keep their own patients), ``iid`` that many sites of rows drawn at random, or ``dirichlet`` label skew;
    or ``remote``: the names of sites on their own machines, each joining with its own rows
    (``seekforge federate server`` and ``seekforge federate site``)."""

    by: Annotated[str, Field(min_length=1)] | None = None
    iid: Annotated[int, Field(ge=2, le=1000)] | None = None
    dirichlet: DirichletSites | None = None
    remote: Annotated[list[SiteName], Field(min_length=2, max_length=1000)] | None = None

    @model_validator(mode="after")
    def _one(self) -> SitesConfig:
        given = [k for k in ("by", "iid", "dirichlet", "remote") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of by, iid, dirichlet, remote (got {', '.join(given) or 'none'})")
        if self.remote is not None and len(set(self.remote)) != len(self.remote):
            raise ValueError(f"remote names a site twice: {sorted(n for n in self.remote if self.remote.count(n) > 1)}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("by", "iid", "dirichlet", "remote") if getattr(self, k) is not None)


class StrategyConfig(BaseConfig):
    """Flower's aggregation: ``fedavg`` (weights averaged by rows), ``fedprox`` (FedAvg whose sites' local
    training is held near the global weights by ``mu`` / 2 * ||w - w_global||^2), ``fedadam`` (the averaged
    update applied by a server-side Adam with learning rate ``eta``)."""

    type: Literal["fedavg", "fedprox", "fedadam"] = "fedavg"
    mu: Annotated[float, Field(ge=0)] = 0.01
    eta: Annotated[float, Field(gt=0)] = 0.01
    #: FedAdam's adaptivity (its epsilon): the smallest step denominator
    tau: Annotated[float, Field(gt=0)] = 1e-3

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        """``strategy: fedavg`` is ``strategy: {type: fedavg}``."""
        return {"type": data} if isinstance(data, str) else data


class PrivacyConfig(BaseConfig):
    """Client-side differential privacy (Flower's fixed clipping): each site's update is clipped to L2 norm
    ``clip`` before it leaves the site, and the server adds Gaussian noise of ``noise_multiplier`` * clip
    to the sum."""

    clip: Annotated[float, Field(gt=0)]
    noise_multiplier: Annotated[float, Field(ge=0)]


class FederatedConfig(BaseConfig):
    """Train the recipe's model on Flower: each site trains ``local_epochs`` on its own rows per round, the
    strategy combines the weights; ``fraction_fit`` of the sites train each round; ``validation`` of each
    site's rows are held out on the site to measure the global model there."""

    sites: SitesConfig
    rounds: Annotated[int, Field(ge=1, le=10_000)]
    strategy: StrategyConfig = StrategyConfig()
    fraction_fit: Annotated[float, Field(gt=0, le=1)] = 1.0
    local_epochs: Annotated[int, Field(ge=1)] = 1
    validation: Annotated[float, Field(ge=0, lt=1)] = 0.2
    privacy: PrivacyConfig | None = None

    @model_validator(mode="after")
    def _private_mean(self) -> FederatedConfig:
        if self.privacy is not None and self.strategy.type == "fedadam":
            raise ValueError("privacy: Flower's noise is calibrated to a mean of clipped updates; FedAdam rescales "
                             "the mean by its own moments after the noise, so use fedavg or fedprox with privacy")  # fmt: skip
        return self
