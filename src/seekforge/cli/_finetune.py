"""``seekforge finetune``: adapt a pretrained encoder to a labelled text set (LoRA adapters, or every weight)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seekforge.cli._common import JsonFlag, Resume, RunDir, RunsDir, SetOption, out, print_json, print_metrics

_SHAPE = """\b
The recipe (every field but model.base and data.path has a default):
  model: {base: builtin:minilm, adapter: lora, rank: 16, alpha: 32, dropout: 0.1, target_modules: [query, value]}
  data: {path: reviews.jsonl, text: review, label: score}
  training: {lr: 5e-4, epochs: 3, warmup_steps: 100, batch_size: 32}
adapter: none trains every weight (full fine-tuning, for comparison). A full recipe (seekforge init
--template text) with model.adapter runs too."""


def finetune(
    recipe: Annotated[Path, typer.Argument(help="Fine-tuning recipe (YAML).")],
    set_: SetOption = None,
    runs_dir: RunsDir = Path("runs"),
    resume: Resume = False,
    run_dir: RunDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune a pretrained text encoder with a classification or regression head and write its package.

    With LoRA the package keeps the adapters and the head (a few hundred kB) and names its base by
    reference and sha256; `seekforge export` merges the adapters into an ordinary ONNX or OpenVINO model.
    """
    from seekforge.core.package import read_manifest
    from seekforge.finetune import load_finetune_recipe
    from seekforge.pipeline import run

    resolved = load_finetune_recipe(recipe, overrides=set_ or [])
    result = run(resolved, runs_dir=runs_dir, resume=resume, run_dir=run_dir)
    model = read_manifest(result.package, verify=False)["model"]
    if as_json:
        print_json({"run_dir": result.run_dir, "package": result.package, "report": result.package / "report.html",
                    "metrics": result.metrics, "model": model})  # fmt: skip
        return
    print_metrics(result.metrics, title=f"test metrics ({result.metrics.get('rows', '?')} rows)")
    share = 100 * model["trainable"] / max(model["parameters"], 1)
    out.print(f"trained {model['trainable']:,} of {model['parameters']:,} parameters ({share:.2f}%)", markup=False)
    out.print(f"package: {result.package}", markup=False)
    out.print(f"report:  {result.package / 'report.html'}", markup=False)


finetune.__doc__ = f"{finetune.__doc__}\n\n{_SHAPE}"
