"""``POST /v1/explain``: attributions of a few records, off by default; the package's torch model is
loaded on first use, one explanation runs at a time, within a time limit."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seekforge.core.batch import several_kinds
from seekforge.core.deps import extra_command
from seekforge.core.package import read_package_json
from seekforge.core.prediction_log import json_safe
from seekforge.serve._batcher import DeadlineExceeded, Overloaded
from seekforge.serve._service import BadRequest, NotServed, TooLarge
from seekforge.serve.config import ServeConfig

METHODS = ("auto", "shap", "ig", "occlusion")


class Explainer:
    """What the server's explanation route calls."""

    def __init__(self, path: Path, manifest: dict[str, Any], config: ServeConfig) -> None:
        self.path, self.manifest, self.config = path, manifest, config
        self._model: Any = None
        self._background: Any = None
        self._encoded: Any = None  # a fusion model's held-out rows, encoded
        self._busy = False

    async def explain(self, rows: Sequence[dict[str, Any]], method: str) -> dict[str, Any]:
        """Attributions of ``rows`` (validated records).

        Raises:
            NotServed: The server was started without ``explain``, or without the full install.
            TooLarge: More records than ``explain_max_rows``.
            Overloaded: Another explanation is running.
            DeadlineExceeded: It took longer than ``explain_timeout_s``.
        """
        self.check(len(rows), method)
        if self._busy:
            raise Overloaded("another explanation is running; retry shortly", retry_after=1.0)
        self._busy = True
        future = asyncio.get_running_loop().run_in_executor(None, self._explain, list(rows), method)
        future.add_done_callback(lambda _: setattr(self, "_busy", False))  # busy until the work ends, not the wait
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.config.explain_timeout_s)
        except TimeoutError:
            raise DeadlineExceeded(
                f"the explanation took longer than {self.config.explain_timeout_s:g} s; explain fewer records, "
                "or raise explain_timeout_s"
            ) from None

    def check(self, records: int, method: str) -> None:
        """What can be refused before the records are read: explanations off or not installed, a table
        package without background rows, an unknown method, too many records."""
        if not self.config.explain:
            raise NotServed(
                "explanations are off on this server; start it with: seekforge serve PACKAGE --set explain=true"
            )
        if not all(importlib.util.find_spec(m) is not None for m in ("torch", "pandas", "shap", "captum")):
            raise NotServed(f"explanations need torch, shap and captum on the server: {extra_command('explain')}")
        if self.several and "samples.safetensors" not in self.manifest["files"]:
            raise NotServed(f"{self.path} carries no held-out rows (samples.safetensors) to take as the SHAP "
                            "background: retrain it with this seekforge")  # fmt: skip
        if self.takes_table and "samples.json" not in self.manifest["files"]:
            raise NotServed(f"{self.path} carries no held-out raw rows (samples.json) to take as the SHAP "
                            "background: retrain it with this seekforge")  # fmt: skip
        if method not in METHODS:
            raise BadRequest(f"method {method!r} is not one of {', '.join(METHODS)}")
        limit = self.config.explain_max_rows
        if records > limit:
            raise TooLarge(f"{records} records to explain; one request explains at most {limit}: split it")

    @property
    def several(self) -> bool:
        """Whether the model reads several kinds of input (a fusion model): each is explained whole, over the
        package's held-out rows as they were encoded."""
        return several_kinds(f["type"] for f in self.manifest["inputs"])

    @property
    def takes_table(self) -> bool:
        return all(f["type"] in ("numeric", "binary", "category") for f in self.manifest["inputs"])

    def _explain(self, rows: list[dict[str, Any]], method: str) -> dict[str, Any]:
        import pandas as pd

        from seekforge.core.errors import ConfigError
        from seekforge.explain import explain, load_model

        if self._model is None:
            self._model = load_model(self.path)
            if self.takes_table:  # held-out raw rows: the background of SHAP values
                self._background = pd.DataFrame(read_package_json(self.path, "samples.json"))
            elif self.several:  # held-out rows as they were encoded
                from seekforge.train import Tensors

                self._encoded = Tensors.load(self.path / "samples.safetensors").inputs
        try:
            found = explain(self._model, pd.DataFrame(rows), rows=len(rows), method=method, faithfulness=False,
                            background_frame=self._background, background_batch=self._encoded)  # fmt: skip
        except ConfigError as exc:  # a method the model's inputs do not allow
            raise BadRequest(exc.message + (f" ({exc.hint})" if exc.hint else "")) from None
        answers = []
        for k in range(len(rows)):
            entry: dict[str, Any] = {
                "prediction": found.predictions[k],
                "value": found.values[k],
                "base": found.base[k],
            }
            if found.kind in ("tabular", "inputs"):
                entry["attributions"] = dict(zip(found.features or [], found.attributions[k].tolist(), strict=True))
            elif found.kind == "text":
                tokens = (found.tokens or [])[k]
                entry["tokens"] = [
                    {"token": t, "attribution": a} for t, a in zip(tokens, found.attributions[k], strict=True)
                ]
            else:
                entry["attributions"] = found.attributions[k].round(6).tolist()  # [height, width]
            answers.append(entry)
        return json_safe({"method": found.method, "output": found.output, "completeness": found.completeness,
                          "explanations": answers})  # fmt: skip
