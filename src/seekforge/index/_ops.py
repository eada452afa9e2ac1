"""``seekforge index``: build an index of a corpus with a package's encoder, add, delete, query."""

from __future__ import annotations

from pathlib import Path

from seekforge.core.errors import ConfigError
from seekforge.index._index import (
    Hit,
    Kind,
    TextEmbedder,
    VectorIndex,
    check_embedder,
    new_index,
    open_index,
    read_corpus,
)


def default_location(package: Path) -> Path:
    """Where a package's index goes unless told: beside it, ``<package>-index``."""
    package = Path(package)
    return package.parent / f"{package.name}-index"


def index_folder(target: Path | str) -> Path:
    """The index ``target`` names: an index folder, or a package folder (its index at the default place)."""
    target = Path(target)
    if (target / "package.json").is_file() and not (target / "index.json").is_file():
        return default_location(target)
    return target


def build_index(
    package: Path | str,
    corpus: Path | str,
    *,
    output: Path | str | None = None,
    text: str | None = None,
    id_field: str | None = None,
    kind: Kind = "auto",
    hnsw: dict[str, int] | None = None,
    force: bool = False,
) -> tuple[VectorIndex, Path]:
    """Embed every passage of ``corpus`` with ``package``'s encoder into a new index at ``output``.

    The text field defaults to the package's own text input's name when the corpus has it, else ``text``.

    Raises:
        ConfigError: Not a text package, or ``output`` exists (without ``force``).
        DataError: A corpus problem, named by its line.
    """
    embedder = TextEmbedder(Path(package))
    ids, texts = read_corpus(corpus, text=text, id_field=id_field, preferred=embedder.field)
    folder = Path(output) if output is not None else default_location(Path(package))
    if folder.exists() and not force:
        raise ConfigError(f"{folder} already exists", hint="pass --force to replace it, or choose another --output")
    index = new_index(embedder, ids, texts, embedder(texts, show=True), kind=kind, hnsw=hnsw)
    return index, index.write(folder, overwrite=force)


def add_passages(target: Path | str, corpus: Path | str, *, text: str | None = None,
                 id_field: str | None = None) -> VectorIndex:  # fmt: skip
    """Embed ``corpus`` with the index's own package and add it (new ids only); its text field is chosen as
    :func:`build_index` chooses it."""
    folder = index_folder(target)
    index = open_index(folder)
    embedder = TextEmbedder(Path(index.meta["package"]))
    check_embedder(index, embedder)
    ids, texts = read_corpus(corpus, text=text, id_field=id_field, preferred=index.meta["text_field"])
    grown = index.added(ids, texts, embedder(texts, show=True))
    grown.write(folder, overwrite=True)
    return grown


def delete_passages(target: Path | str, ids: list[str]) -> VectorIndex:
    """Remove the passages ``ids`` from the index."""
    folder = index_folder(target)
    smaller = open_index(folder).deleted(ids)
    smaller.write(folder, overwrite=True)
    return smaller


class Searcher:
    """An opened index and its package's encoder, for many queries (``serve`` keeps one)."""

    def __init__(self, target: Path | str, *, package: Path | str | None = None) -> None:
        self.folder = index_folder(target)
        self.index = open_index(self.folder)
        self.embedder = TextEmbedder(Path(package) if package is not None else Path(self.index.meta["package"]))
        check_embedder(self.index, self.embedder)

    def search(self, queries: list[str], k: int = 5) -> list[list[Hit]]:
        return self.index.search(self.embedder(queries), k)
