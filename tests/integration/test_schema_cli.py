"""``seekforge schema``: the JSON schema of each configuration file takes every example recipe and
refuses what loading refuses (an unknown key, a model type nobody registered)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from seekforge.models import MODELS
from tests.conftest import EXAMPLES, fusion_recipe
from tests.integration.cli import seekforge

TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def problems(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str = "") -> list[str]:
    """Where ``value`` breaks ``schema``: the structural subset of JSON Schema a config schema uses."""
    if "$ref" in schema:
        return problems(value, root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root, at)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            found = [problems(value, option, root, at) for option in schema[key]]
            return [] if any(not f for f in found) else min(found, key=len)
    if "allOf" in schema:
        return [p for option in schema["allOf"] for p in problems(value, option, root, at)]
    if "const" in schema and value != schema["const"]:
        return [f"{at}: {value!r} is not {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{at}: {value!r} is not one of {schema['enum']}"]
    kind = schema.get("type")
    if kind in ("number", "integer"):
        ok = (
            isinstance(value, int | float) and not isinstance(value, bool) and (kind == "number" or value == int(value))
        )
        return [] if ok else [f"{at}: {value!r} is not a {kind}"]
    if kind in TYPES and not isinstance(value, TYPES[kind]):
        return [f"{at}: {value!r} is not a {kind}"]
    if kind == "object":
        props = schema.get("properties", {})
        found = [
            f"{at}.{k}: unknown key" for k in value if k not in props and schema.get("additionalProperties") is False
        ]
        found += [f"{at}.{k}: missing" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in props:
                found += problems(v, props[k], root, f"{at}.{k}")
            elif isinstance(schema.get("additionalProperties"), dict):
                found += problems(v, schema["additionalProperties"], root, f"{at}.{k}")
        return found
    if kind == "array" and "prefixItems" in schema:
        return [
            p
            for i, (v, s) in enumerate(zip(value, schema["prefixItems"], strict=False))
            for p in problems(v, s, root, f"{at}[{i}]")
        ]
    if kind == "array" and isinstance(schema.get("items"), dict):
        return [p for i, v in enumerate(value) for p in problems(v, schema["items"], root, f"{at}[{i}]")]
    return []


@pytest.fixture(scope="module")
def recipe_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    proc = seekforge("schema", "recipe", cwd=tmp_path_factory.mktemp("schema"), check=True)
    return json.loads(proc.stdout)


def test_every_example_recipe_fits_the_schema(recipe_schema: dict[str, Any]) -> None:
    assert recipe_schema["$schema"].endswith("2020-12/schema") and recipe_schema["additionalProperties"] is False
    for path in sorted(EXAMPLES.glob("*.yaml")):
        assert problems(yaml.safe_load(path.read_text()), recipe_schema, recipe_schema) == [], path.name
    assert problems(fusion_recipe("x.csv"), recipe_schema, recipe_schema) == []


def test_each_registered_model_is_an_option_and_typos_are_refused(recipe_schema: dict[str, Any]) -> None:
    options = recipe_schema["properties"]["model"]["anyOf"]
    defs = recipe_schema["$defs"]
    options = [defs[o["$ref"].rsplit("/", 1)[1]] if "$ref" in o else o for o in options]
    assert options[0]["enum"] == MODELS.names()
    assert sorted(o["properties"]["type"]["const"] for o in options[1:]) == sorted(MODELS.names())
    recipe = yaml.safe_load((EXAMPLES / "digits.yaml").read_text())
    assert problems({**recipe, "trian": {}}, recipe_schema, recipe_schema) == [".trian: unknown key"]
    bad_model = {**recipe, "model": {"type": "cnn", "chanels": [8]}}
    assert problems(bad_model, recipe_schema, recipe_schema)  # no option takes it
    assert problems({**recipe, "seed": "zero"}, recipe_schema, recipe_schema) == [".seed: 'zero' is not a integer"]


def test_the_other_schemas_and_an_unknown_one(tmp_path: Path) -> None:
    for kind in ("finetune", "data-quality", "serve"):
        schema = json.loads(seekforge("schema", kind, cwd=tmp_path, check=True).stdout)
        assert schema["title"].startswith("seekforge") and ("properties" in schema or "oneOf" in schema)
    proc = seekforge("schema", "recipes", cwd=tmp_path)
    assert proc.returncode == 2 and "no schema named 'recipes'; choose one of: recipe, finetune" in proc.stderr
