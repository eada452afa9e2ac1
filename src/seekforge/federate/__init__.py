"""Federated training on Flower: the recipe's model trained across sites that keep their rows, one
ordinary package out (``seekforge federate``). The recipe's ``federated`` section says how the rows make
sites, how many rounds, which strategy. Flower comes with the ``federated`` extra, in its own environment
(constraints-federated.txt); nothing here imports it until a federation runs.

Sites on their own machines: the server runs :func:`serve_federation` (a recipe with
``federated.sites.remote``), each site :func:`join_site` with its key pair from :func:`site_keys`.

Example:
    >>> built = federate(load_recipe("recipe.yaml"))  # a recipe with federated: {sites: {iid: 5}, rounds: 20}
    >>> built.package
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from seekforge.federate.config import FederatedConfig, PrivacyConfig, SitesConfig, StrategyConfig

if TYPE_CHECKING:
    from seekforge.federate._deploy import join_site
    from seekforge.federate._partition import partition
    from seekforge.federate._run import federate
    from seekforge.federate._server import serve_federation
    from seekforge.federate._tls import site_keys

_HOME = {"federate": "_run", "partition": "_partition", "join_site": "_deploy", "site_keys": "_tls",
         "serve_federation": "_server"}  # fmt: skip

__all__ = ["FederatedConfig", "PrivacyConfig", "SitesConfig", "StrategyConfig", "federate", "join_site", "partition",
           "serve_federation", "site_keys"]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'seekforge.federate' has no attribute '{name}'")
    return getattr(importlib.import_module(f"seekforge.federate.{_HOME[name]}"), name)
