"""Text models made elsewhere: a Hugging Face sequence classifier's folder imports with its own tokenizer
and classes and predicts what the folder's model predicts; an ONNX graph with token inputs (int32 ids,
segment ids fed zeros) imports from a declaration naming its tokenizer, and its exports pass the parity
gate; folders that are not sequence classifiers, lack a tokenizer or hold only pickles are refused in
one line, nothing written."""

from __future__ import annotations

import json
import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
pytest.importorskip("onnxscript")

import seekforge  # noqa: E402
from seekforge.core.errors import ConfigError, DataError, PackageError  # noqa: E402
from seekforge.core.package import read_manifest  # noqa: E402
from seekforge.export import ExportConfig, export_package  # noqa: E402
from seekforge.model_import import as_onnx, import_onnx, inspect_onnx  # noqa: E402
from tests.integration.cli import assert_user_error  # noqa: E402
from tests.integration.cli import seekforge as cli  # noqa: E402

WORDS = [
    "good",
    "great",
    "fine",
    "bad",
    "awful",
    "poor",
    "movie",
    "film",
    "plot",
    "the",
    "a",
    "was",
    "is",
    "very",
    "not",
]


def bert_folder(folder: Path, *, labels: dict[int, str] | None = None, head: bool = True) -> Path:
    """A tiny random BERT classifier saved as Hugging Face saves one, with a WordPiece tokenizer.json."""
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    tk = tokenizers.Tokenizer(tokenizers.models.WordPiece(vocab, unk_token="[UNK]"))
    tk.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    tk.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    folder.mkdir(parents=True)
    tk.save(str(folder / "tokenizer.json"))
    labels = labels or {0: "neg", 1: "pos"}
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, id2label=labels, label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config) if head else transformers.BertModel(config)
    model.eval().save_pretrained(folder)
    return folder


def reviews(n: int, seed: int, labels: tuple[object, ...] = ("neg", "pos")) -> pd.DataFrame:
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 12))) for _ in range(n)]
    return pd.DataFrame({"review": texts, "sentiment": [labels[i % len(labels)] for i in range(n)]})


def own_probabilities(folder: Path, texts: list[str]) -> np.ndarray:
    """What the folder's model says, tokenized by transformers itself (the reference the package must meet)."""
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), pad_token="[PAD]")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        return model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.softmax(-1).numpy()


def test_a_hugging_face_classifier_imports_with_its_tokenizer_and_classes(tmp_path: Path) -> None:
    folder = bert_folder(tmp_path / "bert", labels={0: "neg", 1: "pos"})
    test = reviews(60, 1)
    test.to_csv(tmp_path / "test.csv", index=False)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = cli("import", "bert", "-o", "pkg", "--test", "test.csv", "--text", "review", "--label", "sentiment",
                 "--task", "text-classification", "--json", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["metrics"]["rows"] == 60 and answer["report"]["inputs"][0]["name"] == "input_ids"
    manifest = read_manifest(tmp_path / "pkg")
    assert (
        manifest["output"]["classes"] == ["neg", "pos"] and manifest["lineage"]["imported"]["format"] == "huggingface"
    )
    assert manifest["inputs"][0]["type"] == "text"
    predicted = seekforge.load(tmp_path / "pkg", backend="torch").predict(test.head(12))
    expected = own_probabilities(folder, test["review"].head(12).tolist())
    assert np.allclose(predicted[["proba_neg", "proba_pos"]].to_numpy(), expected, atol=1e-5)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # only read
    # the report of the graph the folder becomes, before anything is made of it
    with as_onnx(folder) as graph:  # what `seekforge import FOLDER` reports on: the graph the folder becomes
        report = inspect_onnx(graph)
    assert [s.name for s in report.inputs] == ["input_ids", "attention_mask"] and report.runs_here
    assert report.inputs[0].dynamic_axes == [1] and not graph.exists()


def test_generic_label_names_are_the_numbers_and_a_declaration_may_name_the_columns(tmp_path: Path) -> None:
    folder = bert_folder(tmp_path / "bert", labels={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    test = reviews(45, 2, labels=(0, 1, 2))
    test.to_csv(tmp_path / "test.csv", index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"features": {
        "inputs": [{"name": "review", "type": "text", "max_length": 16}],
        "output": {"name": "sentiment", "type": "category"}}}))  # fmt: skip
    result = import_onnx(folder, spec, tmp_path / "pkg", test=tmp_path / "test.csv")
    assert read_manifest(result.package)["output"]["classes"] == [0, 1, 2]
    assert json.loads((result.package / "preprocessor.json").read_text())["text"]["review"]["max_length"] == 16
    too_long = tmp_path / "long.yaml"
    too_long.write_text(spec.read_text().replace("max_length: 16", "max_length: 100"))
    with pytest.raises(DataError, match="more tokens than the model has positions"):
        import_onnx(folder, too_long, tmp_path / "other", test=tmp_path / "test.csv")
    kept = tmp_path / "kept"  # a declaration inside the folder --force would replace
    kept.mkdir()
    (kept / "spec.yaml").write_text(spec.read_text())
    with pytest.raises(PackageError, match="inside"):
        import_onnx(folder, kept / "spec.yaml", kept, test=tmp_path / "test.csv", force=True)
    assert (kept / "spec.yaml").is_file()


def test_folders_that_cannot_be_imported_are_refused_in_one_line(tmp_path: Path) -> None:
    reviews(20, 3).to_csv(tmp_path / "test.csv", index=False)
    encoder = bert_folder(tmp_path / "encoder", head=False)
    no_tokenizer = bert_folder(tmp_path / "no_tokenizer")
    (no_tokenizer / "tokenizer.json").unlink()
    pickled = bert_folder(tmp_path / "pickled")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    (tmp_path / "empty").mkdir()
    cases = [
        (encoder, "not a sequence classifier"),
        (no_tokenizer, "has no tokenizer.json"),
        (pickled, "only the pickle"),
        (tmp_path / "empty", "no config.json"),
    ]
    for folder, message in cases:
        with pytest.raises(DataError, match=message):
            import_onnx(folder, None, tmp_path / "pkg", test=tmp_path / "test.csv", text="review", label="sentiment")
    assert_user_error(cli("import", "encoder", "-o", "pkg", "--test", "test.csv", cwd=tmp_path),
                      "not a sequence classifier")  # fmt: skip
    assert not (tmp_path / "pkg").exists()
    with pytest.raises(ConfigError, match="--task image-classification"):
        import_onnx(tmp_path / "encoder", None, tmp_path / "x", test=tmp_path / "test.csv", task="image-classification")


def token_graph(folder: Path, path: Path, *, fixed: bool = False) -> Path:
    """The folder's classifier exported by plain torch.onnx.export with int32 token ids, an int64 mask and
    segment ids as inputs named as another exporter might name them."""
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()

    class Scores(torch.nn.Module):
        def forward(self, ids: torch.Tensor, mask: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
            return model(input_ids=ids.long(), attention_mask=mask, token_type_ids=segments).logits

    example = (
        torch.ones(2, 8, dtype=torch.int32),
        torch.ones(2, 8, dtype=torch.int64),
        torch.zeros(2, 8, dtype=torch.int64),
    )
    axes = {0: torch.export.Dim("batch")} | ({} if fixed else {1: torch.export.Dim("tokens", max=64)})
    with torch.no_grad(), warnings.catch_warnings():  # the exporter's own deprecation notices
        warnings.simplefilter("ignore")
        program = torch.onnx.export(Scores().eval(), example, input_names=["ids", "mask", "segments"], output_names=["scores"],
                                    dynamic_shapes=(axes, axes, axes), dynamo=True, verbose=False)  # fmt: skip
    program.save(str(path))
    return path


def test_an_onnx_graph_with_token_inputs_imports_from_its_declaration_and_exports(tmp_path: Path) -> None:
    folder = bert_folder(tmp_path / "bert")
    graph = token_graph(folder, tmp_path / "bert.onnx")
    test = reviews(40, 4)
    test.to_csv(tmp_path / "test.csv", index=False)
    declared = {"features": {"inputs": [{"name": "review", "type": "text", "max_length": 24}],
                             "output": {"name": "sentiment", "type": "binary"}},
                "classes": ["neg", "pos"], "graph": {"ids": "ids", "mask": "mask", "segments": "segments"}}  # fmt: skip
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(declared))
    with pytest.raises(ConfigError, match="tokenizer"):
        import_onnx(graph, spec, tmp_path / "pkg", test=tmp_path / "test.csv")
    spec.write_text(yaml.safe_dump({**declared, "tokenizer": str(folder)}))
    result = import_onnx(graph, spec, tmp_path / "pkg", test=tmp_path / "test.csv")
    predicted = seekforge.load(result.package, backend="torch").predict(test.head(8))
    expected = own_probabilities(folder, test["review"].head(8).tolist())
    assert np.allclose(predicted[["proba_neg", "proba_pos"]].to_numpy(), expected, atol=1e-5)
    # its ids cast to int32 inside, its segment ids made zeros; then its MatMuls quantized
    assert export_package(result.package, ExportConfig(precision="int8")).parity.passed
    shutil.rmtree(result.package)
    unnamed = tmp_path / "unnamed.yaml"
    unnamed.write_text(yaml.safe_dump({**declared, "graph": {}, "tokenizer": str(folder)}))
    with pytest.raises(DataError, match=r"none of its inputs .* is named 'input_ids'"):
        import_onnx(graph, unnamed, tmp_path / "pkg", test=tmp_path / "test.csv")
    fixed = token_graph(folder, tmp_path / "fixed.onnx", fixed=True)
    with pytest.raises(DataError, match="takes exactly 8 tokens a row"):
        import_onnx(fixed, spec, tmp_path / "pkg", test=tmp_path / "test.csv")
    assert not (tmp_path / "pkg").exists()
