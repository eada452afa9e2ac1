"""``seekforge finetune``: adapt a pretrained encoder to a labelled text set (LoRA adapters, or every weight)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer

from seekforge.cli._common import JsonFlag, Resume, RunDir, RunsDir, SetOption, out, print_json, print_metrics

_SHAPE = """\b
The recipe, in short (every field but model.base and data.path has a default):
  model:
    base: builtin:minilm       # or a local Hugging Face folder
    adapter: lora              # qlora: on a 4-bit base (causal LMs);
                               # none: every weight trains
    rank: 16
  data:
    path: reviews.jsonl
    text: review
    label: score
  training:
    epochs: 3
    warmup_steps: 100
  task: classification         # or regression; causal_lm: {prompt, response}
                               # or {text} rows; preference: {prompt, chosen,
                               # rejected} rows (DPO; model.start: a causal_lm
                               # package, or model.base)"""


def finetune(
    recipe: Annotated[Path, typer.Argument(help="Fine-tuning recipe (YAML).")],
    set_: SetOption = None,
    runs_dir: RunsDir = Path("runs"),
    resume: Resume = False,
    run_dir: RunDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune a pretrained model and write its package: a text encoder with a classification or regression head, a causal language model (task: causal_lm), or one tuned on preference pairs (task: preference, DPO through TRL).

    With LoRA the package keeps the adapters (and the head) and names its base by reference and sha256; seekforge export merges an encoder's adapters into an ordinary ONNX or OpenVINO model, and seekforge generate runs a causal language model. A full recipe with model.adapter runs too.
    """
    from seekforge.core.package import read_manifest
    from seekforge.finetune import (
        CausalRecipe,
        PreferenceRecipe,
        finetune_causal,
        finetune_preference,
        load_finetune_recipe,
    )
    from seekforge.pipeline import run

    resolved = load_finetune_recipe(recipe, overrides=set_ or [])
    if isinstance(resolved, CausalRecipe | PreferenceRecipe):
        tune = finetune_causal if isinstance(resolved, CausalRecipe) else finetune_preference
        done = tune(resolved, runs_dir=runs_dir, resume=resume, run_dir=run_dir)  # type: ignore[arg-type]
        if as_json:
            print_json({"run_dir": done.run_dir, "package": done.package, "metrics": done.metrics})
            return
        from seekforge.core.report import fmt

        figures = done.metrics
        if figures.get("val_perplexity") is not None:
            out.print(f"held-out perplexity: {figures['val_perplexity_before']:.3f} before, "
                      f"{figures['val_perplexity']:.3f} after", markup=False)  # fmt: skip
        if figures.get("pairs_preferred") is not None:
            out.print(f"held-out pairs where the chosen response is the likelier: {fmt(figures['pairs_preferred_before'])}"
                      f" before, {fmt(figures['pairs_preferred'])} after; reward margin {fmt(figures['reward_margin'])}, "
                      f"accuracy {fmt(figures['reward_accuracy'])}", markup=False)  # fmt: skip
        out.print(f"package: {done.package}", markup=False)
        out.print(f"report:  {done.package / 'report.html'}", markup=False)
        return
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


finetune.__doc__ = f"{inspect.cleandoc(finetune.__doc__ or '')}\n\n{_SHAPE}"


def generate(
    package: Annotated[
        Path, typer.Argument(help="A causal language model package (seekforge finetune, task: causal_lm).")
    ],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="The text to continue.")],
    max_new_tokens: Annotated[int | None, typer.Option("--max-new-tokens", min=1, max=4096)] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", min=0.0, help="0: greedy.")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", min=0.0, max=1.0)] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seeds the sampling.")] = 0,
    rag: Annotated[
        Path | None, typer.Option("--rag", help="An index (seekforge index build): its top passages go in the prompt.")
    ] = None,
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=50, help="--rag: passages put in the prompt.")] = 4,
    as_json: JsonFlag = False,
) -> None:
    """Continue a prompt with a fine-tuned causal language model (its adapter merged into the checked base).

    With --rag the k passages of the index nearest the prompt come first, one a line, then the prompt."""
    from seekforge.finetune import CausalPackage, Generation
    from seekforge.finetune import generate as continue_text

    opened = CausalPackage(package)
    given = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
    settings = Generation.model_validate({**opened.generation.model_dump(),
                                          **{k: v for k, v in given.items() if v is not None}})  # fmt: skip
    passages = []
    if rag is not None:
        from seekforge.index import Searcher

        passages = [hit.to_dict() for hit in Searcher(rag).search([prompt], k)[0]]
    text = "".join(f"{p['text']}\n" for p in passages) + prompt
    model, tokenizer = opened.load(merge=True)
    output = continue_text(model, tokenizer, text, settings, seed=seed)
    if as_json:
        print_json({"prompt": prompt, "output": output, "passages": passages})
        return
    out.print(output, markup=False, highlight=False, soft_wrap=True)
