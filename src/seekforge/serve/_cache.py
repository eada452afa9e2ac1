"""The prediction cache: the outputs of recently seen records, keyed by the record's canonical JSON, least
recently used first out. Used on the event loop only, so it needs no lock."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any


class PredictionCache:
    """At most ``max_rows`` records' outputs."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.generation = 0  # counts clears: outputs computed before a clear are not stored after it
        self._outputs: OrderedDict[str, dict[str, Any]] = OrderedDict()

    @staticmethod
    def key(record: dict[str, Any]) -> str:
        """The record's canonical form: its fields sorted, its values as validation left them."""
        return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)

    def lookup(self, keys: list[str]) -> dict[int, dict[str, Any]]:
        """The cached outputs, by position in ``keys``; each one found becomes the most recently used."""
        found = {}
        for position, key in enumerate(keys):
            output = self._outputs.get(key)
            if output is not None:
                self._outputs.move_to_end(key)
                found[position] = output
        return found

    def store(self, keys: list[str], outputs: list[dict[str, Any]]) -> None:
        for key, output in zip(keys, outputs, strict=True):
            self._outputs[key] = output
            self._outputs.move_to_end(key)
        while len(self._outputs) > self.max_rows:
            self._outputs.popitem(last=False)

    def clear(self) -> None:
        """Forget every output (a new model is served)."""
        self._outputs.clear()
        self.generation += 1

    def __len__(self) -> int:
        return len(self._outputs)
