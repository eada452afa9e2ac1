"""Writing an explanation: ``explanation.json``, ``attributions.csv`` (and ``attributions.npz`` for
images) and ``report.html``, into a folder that appears whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from seekforge.core.io import atomic_dir
from seekforge.core.prediction_log import json_safe
from seekforge.explain._report import render

if TYPE_CHECKING:
    from seekforge.explain._explain import Explanation


def attribution_table(found: Explanation) -> pd.DataFrame:
    """Tables: one row per explained row, a column per feature; text: one row per token; images: one row
    per image with its total attribution."""
    head = pd.DataFrame({"row": found.rows, "prediction": found.predictions, "value": found.values, "base": found.base})
    if found.kind in ("tabular", "inputs"):
        values = pd.DataFrame(np.asarray(found.attributions), columns=found.features)
        return pd.concat([head, values], axis=1)
    if found.kind == "text":
        records = [
            {"row": row, "position": k, "token": token, "attribution": value}
            for row, tokens, values in zip(found.rows, found.tokens or [], found.attributions, strict=True)
            for k, (token, value) in enumerate(zip(tokens, values, strict=True))
        ]
        return pd.DataFrame(records, columns=["row", "position", "token", "attribution"])
    head["attribution_sum"] = np.asarray(found.attributions).reshape(len(found.rows), -1).sum(axis=1)
    return head


def write_explanation(found: Explanation, folder: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``found`` into ``folder`` (created whole; an existing one is replaced only with ``overwrite``).

    Raises:
        FileExistsError: ``folder`` exists and ``overwrite`` is False.
    """
    folder = Path(folder)
    with atomic_dir(folder, overwrite=overwrite) as tmp:
        text = json.dumps(json_safe(found.to_dict()), indent=2, default=str, allow_nan=False)
        (tmp / "explanation.json").write_text(text + "\n")
        attribution_table(found).to_csv(tmp / "attributions.csv", index=False)
        if found.kind == "image":
            np.savez_compressed(tmp / "attributions.npz", attributions=np.asarray(found.attributions, np.float32))
        (tmp / "report.html").write_text(render(found), encoding="utf-8")
    return folder
