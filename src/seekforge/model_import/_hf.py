"""A Hugging Face model folder (``config.json``, ``tokenizer.json``, ``*.safetensors``) brought to ONNX, so
that it imports as an ONNX file does: a sequence classifier (``...ForSequenceClassification``, its head
trained) is loaded offline with transformers and exported by torch's dynamo exporter with a dynamic batch
and sequence axis; its tokenizer and its classes (``id2label``, in the order of its logits) come from the
folder. The folder is only read; weights in pickles (``pytorch_model.bin``) are refused."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seekforge.core.errors import ConfigError, DataError, first_line

#: what a folder can be imported as
TASKS = ("text-classification",)
#: the tokens a text is cut to unless the declaration says otherwise (at most the model's positions)
DEFAULT_MAX_LENGTH = 128
#: architectures whose position ids start after the padding token's (RoBERTa's 514 positions hold 512 tokens)
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "longformer", "mpnet")


@dataclass(frozen=True)
class HfFolder:
    """What a Hugging Face folder holds, read from its files: the architecture, the classes in the order of
    the logits (None for a regressor), the positions it can read and its ``tokenizer.json``."""

    folder: Path
    architecture: str
    classes: list[Any] | None
    max_positions: int | None
    tokenizer: Path

    @property
    def max_length(self) -> int:
        """The tokens a text is cut to by default: :data:`DEFAULT_MAX_LENGTH`, or the model's positions if fewer."""
        return min(DEFAULT_MAX_LENGTH, self.max_positions or DEFAULT_MAX_LENGTH)

    def declaration(self, *, text: str, label: str) -> dict[str, Any]:
        """The import declaration the folder implies: one text column ``text`` cut to :attr:`max_length`
        tokens and the label ``label``."""
        length = self.max_length
        output = {"name": label, "type": "category" if self.classes is not None else "numeric"}
        return {"features": {"inputs": [{"name": text, "type": "text", "max_length": length}], "output": output},
                "classes": self.classes, "tokenizer": str(self.tokenizer)}  # fmt: skip


def read_folder(folder: Path, task: str | None = None) -> HfFolder:
    """What ``folder`` holds, checked before anything loads it.

    Raises:
        ConfigError: ``task`` is not one seekforge imports.
        DataError: Not a Hugging Face folder, not a sequence classifier with its head, no fast tokenizer,
            or weights only in pickles.
    """
    if task is not None and task not in TASKS:
        raise ConfigError(f"--task {task}: seekforge imports Hugging Face folders for {', '.join(TASKS)}")
    path = folder / "config.json"
    if not path.is_file():
        raise DataError(f"{folder} is not a Hugging Face model folder: it has no config.json",
                        hint="save the model there with model.save_pretrained(FOLDER)")  # fmt: skip
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is not a JSON model config: {first_line(exc)}") from None
    if not isinstance(config, dict):
        raise DataError(f"{path} is not a JSON model config (an object)")
    names = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    architecture = next((a for a in names if a.endswith("ForSequenceClassification")), None)
    if architecture is None:
        raise DataError(f"{folder}: its config names {', '.join(names) or 'no architecture'}, not a sequence "
                        "classifier (...ForSequenceClassification); a head it lacks would start random",
                        hint="fine-tune the encoder here instead (model: {type: transformer, pretrained: FOLDER}), "
                             "or save the classifier with its head")  # fmt: skip
    if config.get("problem_type") == "multi_label_classification":
        raise DataError(f"{folder}: a multi-label classifier (problem_type multi_label_classification) gives one "
                        "yes/no per label; seekforge imports classifiers of one class per row")  # fmt: skip
    classes = _classes(config, path)
    if not (folder / "tokenizer.json").is_file():
        raise DataError(f"{folder} has no tokenizer.json (a fast tokenizer), which the package tokenizes with",
                        hint="save it there: AutoTokenizer.from_pretrained(FOLDER).save_pretrained(FOLDER)")  # fmt: skip
    if not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for p in folder.glob("*.bin"))
        raise DataError(f"{folder} holds no *.safetensors weights" + (f", only the pickle(s) {', '.join(pickled)}, "
                        "which seekforge never unpickles" if pickled else ""),
                        hint="save them as safetensors: model.save_pretrained(FOLDER)")  # fmt: skip
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and config.get("model_type") in _OFFSET_POSITIONS:  # ids start past the padding's
        positions -= int(config.get("pad_token_id") or 1) + 1
    return HfFolder(folder, architecture, classes, positions if isinstance(positions, int) else None,
                    folder / "tokenizer.json")  # fmt: skip


def _classes(config: dict[str, Any], path: Path) -> list[Any] | None:
    """The classes in the order of the logits: ``id2label``'s names, or 0..n-1 where they are the generic
    ``LABEL_i`` (a model saved without names: its labels are the numbers); None for a regressor."""
    id2label = config.get("id2label") or {}
    count = len(id2label) or int(config.get("num_labels", 2))
    if config.get("problem_type") == "regression" or count == 1:
        return None
    try:
        names = [str(id2label[key]) for key in sorted(id2label, key=int)] if id2label else []
    except (TypeError, ValueError):
        raise DataError(f"{path}: id2label's keys {sorted(id2label)} are not the logits' numbers") from None
    if not names or all(re.fullmatch(rf"LABEL_{i}", name) for i, name in enumerate(names)):
        return list(range(count))
    return names


def hf_to_onnx(hf: HfFolder, out: Path, *, max_length: int, opset: int) -> None:
    """Write the folder's classifier as the ONNX file ``out`` (inputs ``input_ids`` and ``attention_mask``,
    output ``logits``), exported on ``max_length``-token rows with both axes dynamic.

    Raises:
        DataError: transformers cannot load the folder, or the exporter cannot convert the model.
    """
    import torch
    from torch import nn

    from seekforge.core.deps import quiet
    from seekforge.export import ExportError, export_onnx
    from seekforge.models import hf_transformers

    if hf.max_positions is not None and max_length > hf.max_positions:
        raise DataError(f"{hf.folder}: max_length {max_length} is more tokens than the model has positions "
                        f"({hf.max_positions})", hint=f"declare max_length {hf.max_positions} or fewer")  # fmt: skip
    transformers = hf_transformers(purpose="importing a Hugging Face model")
    try:
        with quiet("transformers"):
            net = transformers.AutoModelForSequenceClassification.from_pretrained(hf.folder).eval()
    except Exception as exc:  # transformers raises many types for a folder it cannot read
        raise DataError(f"{hf.folder}: transformers {transformers.__version__} cannot load it "
                        f"({type(exc).__name__}: {first_line(exc)})") from None  # fmt: skip

    class Logits(nn.Module):  # the batch dict seekforge's exporter feeds, in; the classifier's logits, out
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits

    vocab = int(getattr(net.config, "vocab_size", 100) or 100)
    generator = torch.Generator().manual_seed(0)
    example = {"input_ids": torch.randint(0, vocab, (2, max_length), generator=generator),
               "attention_mask": torch.ones(2, max_length, dtype=torch.int64)}  # fmt: skip
    try:
        export_onnx(Logits(), example, out, opset=opset)
    except ExportError as exc:
        raise DataError(f"{hf.folder} ({hf.architecture}): {exc.message}", hint=exc.hint) from exc
