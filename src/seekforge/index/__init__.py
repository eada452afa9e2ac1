"""Vector indexes of a corpus embedded by a text package's encoder (``seekforge index``), for retrieval."""

from seekforge.index._index import (
    EXACT_LIMIT,
    HNSW_DEFAULTS,
    TARGET_RECALL,
    Hit,
    TextEmbedder,
    VectorIndex,
    check_embedder,
    new_index,
    normalised,
    open_index,
    read_corpus,
)
from seekforge.index._ops import Searcher, add_passages, build_index, default_location, delete_passages, index_folder

__all__ = [
    "EXACT_LIMIT",
    "HNSW_DEFAULTS",
    "TARGET_RECALL",
    "Hit",
    "Searcher",
    "TextEmbedder",
    "VectorIndex",
    "add_passages",
    "build_index",
    "check_embedder",
    "default_location",
    "delete_passages",
    "index_folder",
    "new_index",
    "normalised",
    "open_index",
    "read_corpus",
]
