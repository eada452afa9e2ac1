"""``seekforge index``: embed a corpus with a text package's encoder into a vector index; add, delete, query."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seekforge.cli._common import Force, JsonFlag, err, out, print_json

index_app = typer.Typer(help="Vector indexes of a corpus, embedded by a text package's encoder, for retrieval.")

Target = Annotated[Path, typer.Argument(help="An index folder, or a package (its index beside it: PACKAGE-index).")]
Corpus = Annotated[Path, typer.Argument(help="Passages: .jsonl, .csv or .parquet, one per row.")]
TextField = Annotated[
    str | None,
    typer.Option("--text", help="The passages' text field \\[default: the package's text input, else text]."),
]
IdField = Annotated[
    str | None, typer.Option("--id", help="The passages' id field \\[default: id, else the row number].")
]


@index_app.command("build")
def build(
    package: Annotated[Path, typer.Argument(help="A text package: its encoder embeds the passages.")],
    corpus: Corpus,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="\\[default: PACKAGE-index beside it]")] = None,
    text: TextField = None,
    id_field: IdField = None,
    kind: Annotated[
        str, typer.Option("--kind", help="exact, hnsw, or auto: exact up to 50,000 passages, HNSW above.")
    ] = "auto",
    force: Force = False,
    as_json: JsonFlag = False,
) -> None:
    """Embed every passage (mean-pooled by the package's encoder, normalised) into a new index."""
    from seekforge.index import build_index

    if kind not in ("auto", "exact", "hnsw"):
        raise typer.BadParameter(f"--kind is '{kind}'; choose exact, hnsw or auto")
    index, folder = build_index(package, corpus, output=output, text=text, id_field=id_field, kind=kind,  # type: ignore[arg-type]
                                force=force)  # fmt: skip
    calibration = index.meta.get("calibration")
    if as_json:
        print_json({"index": folder, "count": len(index), "kind": index.kind, "dim": index.meta["dim"],
                    "calibration": calibration})  # fmt: skip
        return
    out.print(f"index: {folder} ({len(index):,} passages, {index.kind}, {index.meta['dim']} dimensions)", markup=False)
    if calibration is not None:
        err.print(f"HNSW recall@10 on {calibration['queries']} of its passages: {calibration['recall_at_10']:.4f} "
                  f"(expansion_search {calibration['expansion_search']})"
                  + ("; below 0.95 with every setting tried, so it is searched exactly" if index.kind == "exact" else ""),
                  markup=False)  # fmt: skip


@index_app.command("add")
def add(
    target: Target, corpus: Corpus, text: TextField = None, id_field: IdField = None, as_json: JsonFlag = False
) -> None:
    """Embed more passages with the index's own package and add them (their ids must be new)."""
    from seekforge.index import add_passages, index_folder

    index = add_passages(target, corpus, text=text, id_field=id_field)
    _done(index_folder(target), len(index), as_json)


@index_app.command("delete")
def delete(
    target: Target,
    ids: Annotated[list[str], typer.Option("--id", help="A passage's id (repeatable).")],
    as_json: JsonFlag = False,
) -> None:
    """Remove passages by id."""
    from seekforge.index import delete_passages, index_folder

    index = delete_passages(target, ids)
    _done(index_folder(target), len(index), as_json)


def _done(folder: Path, count: int, as_json: bool) -> None:
    if as_json:
        print_json({"index": folder, "count": count})
    else:
        out.print(f"index: {folder} ({count:,} passages)", markup=False)


@index_app.command("query")
def query(
    target: Target,
    question: Annotated[str, typer.Argument(help="The text to find passages for.")],
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=1000, help="Passages to return.")] = 5,
    as_json: JsonFlag = False,
) -> None:
    """The k passages nearest the question (cosine similarity of the package's embeddings)."""
    from seekforge.index import Searcher

    hits = Searcher(target).search([question], k)[0]
    if as_json:
        print_json({"query": question, "hits": [h.to_dict() for h in hits]})
        return
    if not hits:
        err.print("the index is empty", markup=False)
    for rank, hit in enumerate(hits, 1):
        shown = hit.text if len(hit.text) <= 200 else hit.text[:199] + "…"
        out.print(f"{rank}. [{hit.score:.4f}] {hit.id}: {shown}", markup=False, soft_wrap=True)
