"""A vector index of a corpus, embedded by a text package's own encoder.

Each passage is embedded as the package's head reads a text (the encoder's tokens, mean- or CLS-pooled:
``embed_text``), then normalised, so that the inner product is the cosine similarity. Small corpora are
searched exactly (one matrix product); above ``EXACT_LIMIT`` passages the index is an HNSW graph
(usearch), whose recall against exact search ``benchmarks/index_recall.py`` measures.

An index folder holds ``index.json`` (what embedded it, the settings, each file's sha256),
``passages.jsonl`` (id and text), ``vectors.npy`` (float32, one row a passage), ``keys.npy`` (each row's
key in the graph) and, for HNSW, ``hnsw.usearch``. It is written atomically as a whole and checked
against its checksums when opened; adding or deleting passages writes a new folder in its place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from seekforge.core.deps import require
from seekforge.core.errors import ConfigError, DataError, PackageError
from seekforge.core.io import atomic_dir, sha256_file
from seekforge.core.package import read_manifest, read_package_json, verify_files
from seekforge.core.progress import progress_task
from seekforge.core.variants import model_version

FORMAT = 1
#: Passages up to which ``auto`` searches exactly; above, an HNSW graph.
EXACT_LIMIT = 50_000
#: Texts embedded at a time.
BATCH = 256
#: HNSW settings: neighbours per node, candidates kept while inserting and while searching (the least; see
#: :func:`calibrate`).
HNSW_DEFAULTS = {"connectivity": 16, "expansion_add": 128, "expansion_search": 128}
#: The recall@10 against exact search an HNSW index must reach on its own passages.
TARGET_RECALL = 0.95
#: Passages a calibration queries, and the most candidates it lets a search keep.
CALIBRATION_QUERIES = 200
MAX_EXPANSION = 4096

Kind = Literal["auto", "exact", "hnsw"]


@dataclass(frozen=True)
class Hit:
    """One passage found: its id, text and cosine similarity to the query."""

    id: str
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "score": round(self.score, 6)}


class TextEmbedder:
    """A text package's encoder: raw texts in, normalised embeddings out (torch, adapters merged)."""

    def __init__(self, package: Path) -> None:
        from seekforge.data import Preprocessor
        from seekforge.models import build_model

        self.package = Path(package)
        self.manifest = read_manifest(self.package)
        texts = [f["name"] for f in self.manifest["inputs"] if f["type"] == "text"]
        if len(texts) != 1 or len(self.manifest["inputs"]) != 1:
            shown = ", ".join(f"{f['name']} ({f['type']})" for f in self.manifest["inputs"])
            raise ConfigError(
                f"{self.package}: an index embeds text with a text package's encoder, but its inputs are {shown}",
                hint="build the index with a package trained on one text input (seekforge finetune or a text recipe)",
            )
        self.field = texts[0]
        self.preprocessor = Preprocessor.from_dict(read_package_json(self.package, "preprocessor.json"))
        self.model = build_model(self.package, merge=True)
        if not callable(getattr(self.model, "embed_text", None)):
            raise ConfigError(f"{self.package}: its model ({type(self.model).__name__}) has no text embedding")
        self.version = model_version(self.manifest)
        self.sha256 = sha256_file(self.package / "package.json")

    def __call__(self, texts: list[str], *, show: bool = False) -> np.ndarray:
        """``[len(texts), dim]`` float32 unit vectors."""
        import pandas as pd

        from seekforge.models import infer

        parts = []
        with progress_task("embedding", total=len(texts), show=show) as advance:
            for start in range(0, len(texts), BATCH):
                chunk = pd.DataFrame({self.field: texts[start : start + BATCH]})
                inputs = self.preprocessor.transform(chunk)
                parts.append(infer(self.model, inputs, batch_size=BATCH, forward=self.model.embed_text).numpy())
                advance(len(chunk))
        vectors = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
        return normalised(vectors)


def normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def read_corpus(
    path: str | Path, *, text: str | None, id_field: str | None, preferred: str | None = None
) -> tuple[list[str], list[str]]:
    """The ids and texts of a corpus file (.jsonl, .csv, .parquet). The text field is ``text``, else
    ``preferred`` (a package's own text input) when the corpus has it, else ``text``; ids default to the
    ``id`` field when there is one, else each row's number (from 1).

    Raises:
        DataError: A missing field, a row without its text or id, a repeated id (each named by its line).
    """
    from seekforge.data import read_source, require_values, row_place

    frame = read_source(str(path))
    text = text or (preferred if preferred in frame.columns else "text")
    wanted = [text] + ([id_field] if id_field else [])
    missing = [f for f in wanted if f not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: no field {', '.join(repr(m) for m in missing)}; fields present: "
            f"{', '.join(map(repr, map(str, frame.columns[:20])))}",
            hint="name the text field with --text (and the id field with --id)",
        )
    id_field = id_field or ("id" if "id" in frame.columns else None)
    for field in [text] + ([id_field] if id_field else []):
        require_values(
            frame[field], frame, field, hint=f"every passage needs its '{field}': drop or fill the rows without it"
        )
    ids = [str(v) for v in frame[id_field]] if id_field else [str(i + 1) for i in range(len(frame))]
    seen: dict[str, int] = {}
    for position, key in enumerate(ids):
        if key in seen:
            raise DataError(f"{row_place(frame, position)}: id '{key}' repeats the one of {row_place(frame, seen[key])}",
                            hint="each passage needs its own id")  # fmt: skip
        seen[key] = position
    return ids, [str(v) for v in frame[text]]


class VectorIndex:
    """An index folder, opened (checksums verified) or about to be written."""

    def __init__(self, meta: dict[str, Any], ids: list[str], texts: list[str], vectors: np.ndarray,
                 keys: np.ndarray, graph: Any = None) -> None:  # fmt: skip
        self.meta, self.ids, self.texts, self.vectors, self.keys = meta, ids, texts, vectors, keys
        self.graph = graph
        self._row_of_key = {int(k): i for i, k in enumerate(keys)}

    @property
    def kind(self) -> str:
        return str(self.meta["kind"])

    def __len__(self) -> int:
        return len(self.ids)

    # ------------------------------------------------------------------------------------ searching

    def search(self, queries: np.ndarray, k: int) -> list[list[Hit]]:
        """The ``k`` passages nearest each (unit) query vector, best first."""
        queries = normalised(np.atleast_2d(queries))
        k = min(k, len(self))
        if k <= 0:
            return [[] for _ in queries]
        if self.graph is None:
            scores = queries @ self.vectors.T
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
            rows = np.take_along_axis(top, order, axis=1)
            return [[self._hit(int(r), float(s[r])) for r in row] for row, s in zip(rows, scores, strict=True)]
        found = self.graph.search(queries, k)
        keys, distances = np.atleast_2d(found.keys), np.atleast_2d(found.distances)
        # one query row comes back as Matches (no counts), several as BatchMatches
        counts = np.atleast_1d(getattr(found, "counts", keys.shape[1]))
        return [[self._hit(self._row_of_key[int(key)], 1.0 - float(d)) for key, d in zip(ks[:n], ds[:n], strict=True)]
                for ks, ds, n in zip(keys, distances, counts, strict=True)]  # fmt: skip

    def _hit(self, row: int, score: float) -> Hit:
        return Hit(self.ids[row], self.texts[row], score)

    # ------------------------------------------------------------------------------------- changing

    def added(self, ids: list[str], texts: list[str], vectors: np.ndarray) -> VectorIndex:
        """A copy with more passages (ids already present are refused)."""
        clash = sorted(set(ids) & set(self.ids))
        if clash:
            raise DataError(f"ids already in the index: {', '.join(clash[:5])}" + (" ..." if len(clash) > 5 else ""),
                            hint="delete them first (seekforge index delete), or give the new passages other ids")  # fmt: skip
        start = int(self.keys.max()) + 1 if len(self.keys) else 0
        keys = np.concatenate([self.keys, np.arange(start, start + len(ids), dtype=np.uint64)])
        graph = self.graph
        if graph is not None:
            graph = graph.copy()
            graph.add(keys[len(self.keys) :], vectors)
        return VectorIndex(self.meta, self.ids + ids, self.texts + texts, np.concatenate([self.vectors, vectors]),
                           keys, graph)  # fmt: skip

    def deleted(self, ids: list[str]) -> VectorIndex:
        """A copy without the passages ``ids`` (each must be in the index)."""
        position = {key: i for i, key in enumerate(self.ids)}
        unknown = [i for i in ids if i not in position]
        if unknown:
            raise DataError(f"ids not in the index: {', '.join(unknown[:5])}" + (" ..." if len(unknown) > 5 else ""))
        drop = np.array(sorted(position[i] for i in set(ids)), dtype=np.int64)
        keep = np.setdiff1d(np.arange(len(self.ids)), drop)
        graph = self.graph
        if graph is not None:
            graph = graph.copy()
            graph.remove(self.keys[drop])
        return VectorIndex(self.meta, [self.ids[i] for i in keep], [self.texts[i] for i in keep], self.vectors[keep],
                           self.keys[keep], graph)  # fmt: skip

    # ---------------------------------------------------------------------------------------- files

    def write(self, folder: Path, *, overwrite: bool = False) -> Path:
        """Write the index to ``folder`` atomically, each file's sha256 in ``index.json``."""
        try:
            with atomic_dir(folder, overwrite=overwrite) as tmp:
                lines = (
                    json.dumps({"id": i, "text": t}, ensure_ascii=False)
                    for i, t in zip(self.ids, self.texts, strict=True)
                )
                (tmp / "passages.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
                np.save(tmp / "vectors.npy", self.vectors.astype(np.float32), allow_pickle=False)
                np.save(tmp / "keys.npy", self.keys.astype(np.uint64), allow_pickle=False)
                if self.graph is not None:
                    self.graph.save(str(tmp / "hnsw.usearch"))
                files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
                meta = {**self.meta, "count": len(self), "updated": _now(), "files": files}
                (tmp / "index.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        except FileExistsError:
            raise ConfigError(
                f"{folder} already exists", hint="pass --force to replace it, or choose another --output"
            ) from None
        return folder


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _usearch() -> Any:
    return require("usearch.index", purpose="HNSW vector indexes")


def new_index(embedder: TextEmbedder, ids: list[str], texts: list[str], vectors: np.ndarray, *, kind: Kind = "auto",
              hnsw: dict[str, int] | None = None) -> VectorIndex:  # fmt: skip
    """An index of ``vectors`` (already embedded by ``embedder``)."""
    chosen = ("hnsw" if len(ids) > EXACT_LIMIT else "exact") if kind == "auto" else kind
    settings = {**HNSW_DEFAULTS, **(hnsw or {})}
    meta = {
        "format": FORMAT,
        "package": str(embedder.package.resolve()),
        "package_sha256": embedder.sha256,
        "model_version": embedder.version,
        "text_field": embedder.field,
        "dim": int(vectors.shape[1]),
        "metric": "cosine",
        "kind": chosen,
        "created": _now(),
        **({"hnsw": settings} if chosen == "hnsw" else {}),
    }
    keys = np.arange(len(ids), dtype=np.uint64)
    graph = None
    if chosen == "hnsw":
        graph = _graph(meta)
        graph.add(keys, vectors)
        found = calibrate(graph, vectors, settings["expansion_search"])
        meta["calibration"] = found
        settings["expansion_search"] = graph.expansion_search = found["expansion_search"]
        if found["recall_at_10"] < TARGET_RECALL and kind == "auto":
            # these vectors have no neighbourhoods a graph can follow (no structure): search them exactly
            meta.pop("hnsw")
            meta["kind"], graph = "exact", None
    return VectorIndex(meta, ids, texts, vectors, keys, graph)


def calibrate(graph: Any, vectors: np.ndarray, least: int) -> dict[str, Any]:
    """The fewest search candidates (``expansion_search``, from ``least``, doubling up to
    :data:`MAX_EXPANSION`) with which the graph finds :data:`TARGET_RECALL` of the 10 exact nearest
    neighbours of a seeded sample of its own vectors (each one's own match left out), and the recall each
    setting reached."""
    rng = np.random.default_rng(0)
    sample = rng.choice(len(vectors), size=min(CALIBRATION_QUERIES, len(vectors)), replace=False)
    queries = vectors[sample]
    k = min(11, len(vectors))
    scores = queries @ vectors.T
    exact = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    truth = [set(map(int, row)) - {int(own)} for row, own in zip(exact, sample, strict=True)]
    tried: dict[str, float] = {}
    expansion = least
    while True:
        graph.expansion_search = expansion
        found = graph.search(queries, k)
        keys = np.atleast_2d(found.keys)
        recall = float(
            np.mean([len(set(map(int, row)) & t) / max(len(t), 1) for row, t in zip(keys, truth, strict=True)])
        )
        tried[str(expansion)] = round(recall, 4)
        if recall >= TARGET_RECALL or expansion >= MAX_EXPANSION:
            return {
                "queries": len(sample),
                "expansion_search": expansion,
                "recall_at_10": round(recall, 4),
                "tried": tried,
            }
        expansion *= 2


def _graph(meta: dict[str, Any]) -> Any:
    settings = meta["hnsw"]
    return _usearch().Index(ndim=meta["dim"], metric="cos", dtype="f32", connectivity=settings["connectivity"],
                            expansion_add=settings["expansion_add"], expansion_search=settings["expansion_search"])  # fmt: skip


def open_index(folder: Path | str) -> VectorIndex:
    """Open an index folder, every file checked against ``index.json``.

    Raises:
        PackageError: Not an index, a file missing or modified, or written by a newer seekforge.
    """
    folder = Path(folder)
    path = folder / "index.json"
    if not path.is_file():
        raise PackageError(f"{folder} is not a vector index (no index.json)",
                           hint="build one: seekforge index build PACKAGE corpus.jsonl")  # fmt: skip
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        files = dict(meta["files"])
        assert meta["format"] <= FORMAT, f"format {meta['format']} is newer than this seekforge reads ({FORMAT})"
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise PackageError(f"{path} is damaged or not an index description ({exc})") from None
    verify_files(folder, files, what="index")
    passages = [json.loads(line) for line in (folder / "passages.jsonl").read_text(encoding="utf-8").splitlines()]
    vectors = np.load(folder / "vectors.npy", allow_pickle=False)
    keys = np.load(folder / "keys.npy", allow_pickle=False)
    graph = None
    if meta["kind"] == "hnsw":
        graph = _graph(meta)
        graph.load(str(folder / "hnsw.usearch"))
    return VectorIndex(meta, [p["id"] for p in passages], [p["text"] for p in passages], vectors, keys, graph)


def check_embedder(index: VectorIndex, embedder: TextEmbedder) -> None:
    """Refuse to query (or grow) an index with another package's encoder: the vectors would not compare.

    Raises:
        ConfigError: With both packages' model versions.
    """
    if embedder.sha256 != index.meta["package_sha256"]:
        raise ConfigError(
            f"the index was embedded by {index.meta['package']} ({index.meta['model_version']}), not by "
            f"{embedder.package} ({embedder.version}): their vectors do not compare",
            hint="query it with the package that built it, or build a new index with this one",
        )
