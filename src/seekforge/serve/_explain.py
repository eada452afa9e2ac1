"""``POST /v1/explain``: attributions of a few records, off by default; the package's torch model is
loaded on first use, one explanation runs at a time, within a time limit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
        self._busy = False

    async def explain(self, rows: Sequence[dict[str, Any]], method: str) -> dict[str, Any]:
        """Attributions of ``rows`` (validated records).

        Raises:
            NotServed: The server was started without ``explain``, or without the full install.
            TooLarge: More records than ``explain_max_rows``.
            Overloaded: Another explanation is running.
            DeadlineExceeded: It took longer than ``explain_timeout_s``.
        """
        if not self.config.explain:
            raise NotServed(
                "explanations are off on this server; start it with: seekforge serve PACKAGE --set explain=true"
            )
        from seekforge.serve._load import full_install

        if not full_install():
            raise NotServed(f"explanations need the full install (torch, shap, captum): {extra_command('explain')}")
        if method not in METHODS:
            raise BadRequest(f"method {method!r} is not one of {', '.join(METHODS)}")
        limit = self.config.explain_max_rows
        if len(rows) > limit:
            raise TooLarge(f"{len(rows)} records to explain; one request explains at most {limit}: split it")
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

    def _explain(self, rows: list[dict[str, Any]], method: str) -> dict[str, Any]:
        import pandas as pd

        from seekforge.explain import explain, load_model

        if self._model is None:
            self._model = load_model(self.path)
            if "samples.json" in self.manifest["files"]:  # held-out raw rows: the tables' background
                self._background = pd.DataFrame(read_package_json(self.path, "samples.json"))
        found = explain(self._model, pd.DataFrame(rows), rows=len(rows), method=method,
                        background_frame=self._background, faithfulness=False)  # fmt: skip
        answers = []
        for k in range(len(rows)):
            entry: dict[str, Any] = {
                "prediction": found.predictions[k],
                "value": found.values[k],
                "base": found.base[k],
            }
            if found.kind == "tabular":
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
