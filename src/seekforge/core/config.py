"""The pydantic base for every configuration section, and pluggable ``{type: name, ...}`` sections."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, GetJsonSchemaHandler, SerializeAsAny

from seekforge.core.errors import RegistryError
from seekforge.core.registry import Registry


class BaseConfig(BaseModel):
    """Frozen, and a typo is an error: unknown keys are never silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class PluggableConfig(BaseConfig):
    """Base of a section chosen by its ``type`` from a registry (models, optimizers, ...).

    Subclasses set ``type`` to a ``Literal`` of their registered name.
    """

    type: str
    registry: ClassVar[Registry[type[PluggableConfig]]]


def _dispatcher(registry: Registry[type[PluggableConfig]], base: type[PluggableConfig], default: str | None) -> Any:
    def dispatch(value: Any) -> Any:
        if isinstance(value, base):
            return value
        if isinstance(value, str):
            value = {"type": value}
        if isinstance(value, dict) and "type" not in value and default is not None:
            value = {"type": default, **value}
        if not isinstance(value, dict) or "type" not in value:
            raise ValueError(f"must be a mapping with a 'type' key, one of: {', '.join(registry.names())}")
        try:
            cls = registry.get(str(value["type"]))
        except RegistryError as exc:
            raise ValueError(exc.message) from None
        return cls.model_validate(value)

    return dispatch


class _Registered:
    """The JSON schema of a pluggable field: one of its registry's config classes (as registered when the
    schema is made, plugins included), or a bare name."""

    def __init__(self, registry: Registry[type[PluggableConfig]]) -> None:
        self.registry = registry

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        names = self.registry.names()
        options = [handler(self.registry.get(name).__pydantic_core_schema__) for name in names]
        return {"anyOf": [{"type": "string", "enum": names}, *options]}  # a mapping without type may fit several


def pluggable(registry: Registry[Any], base: type[PluggableConfig], *, default: str | None = None) -> Any:
    """Type annotation for a field whose config class is looked up by ``type`` in ``registry``.

    A bare string is shorthand for ``{type: string}``; a mapping without ``type`` takes ``default``.
    """
    return Annotated[SerializeAsAny[base], BeforeValidator(_dispatcher(registry, base, default)), _Registered(registry)]


def json_schema(*configs: type[BaseModel], title: str) -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of a configuration file that is one of ``configs``, for editors and
    forms: every field with its type, default and description; unknown keys refused, as loading does."""
    from pydantic.json_schema import models_json_schema

    if len(configs) == 1:
        schema = configs[0].model_json_schema()
    else:
        refs, schema = models_json_schema([(c, "validation") for c in configs], ref_template="#/$defs/{model}")
        schema["oneOf"] = [refs[(c, "validation")] for c in configs]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": title}


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str, *, what: str) -> float:
    """Seconds in a duration such as ``90s``, ``30m``, ``1h``, ``7d`` or ``2w`` (a bare number is seconds).

    Raises:
        ConfigError: Not such a duration, or not positive; ``what`` names the option in the message.
    """
    from seekforge.core.errors import ConfigError

    value = text.strip().lower()
    unit = _UNITS.get(value[-1:]) if value else None
    number = value[:-1] if unit else value
    try:
        seconds = float(number) * (unit or 1.0)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{what}: {text!r} is not a duration", hint="write e.g. 90s, 30m, 1h, 7d or 2w")
    return seconds
