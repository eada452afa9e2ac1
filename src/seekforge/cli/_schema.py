"""``seekforge schema``: the JSON schema of each configuration file, for editors and forms."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from seekforge.core.errors import ConfigError

KINDS = ("recipe", "finetune", "data-quality", "serve")


def schema_of(kind: str) -> dict[str, Any]:
    """The JSON schema of the configuration file ``kind`` (one of :data:`KINDS`).

    Raises:
        ConfigError: An unknown kind.
    """
    from seekforge.core.config import json_schema

    if kind == "recipe":
        from seekforge.recipe import Recipe

        return json_schema(Recipe, title="seekforge recipe")
    if kind == "finetune":
        from seekforge.finetune import CausalRecipe, FinetuneRecipe, PreferenceRecipe

        return json_schema(FinetuneRecipe, CausalRecipe, PreferenceRecipe, title="seekforge fine-tuning recipe")
    if kind == "data-quality":
        from seekforge.data.quality_config import DataQualityConfig

        return json_schema(DataQualityConfig, title="seekforge data quality configuration")
    if kind == "serve":
        from seekforge.serve import ServeConfig

        return json_schema(ServeConfig, title="seekforge serving configuration")
    raise ConfigError(f"no schema named {kind!r}; choose one of: {', '.join(KINDS)}")


def schema(
    kind: Annotated[str, typer.Argument(help=f"Which file: {', '.join(KINDS)}.", show_default=False)] = "recipe",
) -> None:
    """Print the JSON schema of a configuration file (every field, its type, default and description).

    Save it and point an editor at it: a first line ``# yaml-language-server: $schema=recipe.schema.json``
    gives completion and checks as you type in editors with the YAML language server.
    """
    sys.stdout.write(json.dumps(schema_of(kind), indent=2) + "\n")
