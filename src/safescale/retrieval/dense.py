"""Dense retrieval in a persistent chromadb collection with our offline embedder.

chromadb's default embedding function downloads a model on first use; we
register our own function so that neither add nor query (nor a reopened
collection in a new process) can ever reach for it. One writer per path:
the index is built by a single Snakemake job and only read afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from safescale.retrieval.chunking import Chunk
from safescale.retrieval.embedder import EMBEDDING_NAME, MiniLMEmbedder

COLLECTION = "safescale_chunks"
_MAX_ADD = 5000  # chromadb accepts at most 5,461 records per add()


def _chroma():
    import chromadb
    from chromadb.api.types import EmbeddingFunction
    from chromadb.utils.embedding_functions import register_embedding_function

    @register_embedding_function
    class OfflineMiniLM(EmbeddingFunction):
        def __init__(self, threads: int = 1, max_length: int = 256, batch_size: int = 8):
            self._cfg = {"threads": threads, "max_length": max_length, "batch_size": batch_size}
            self._embedder = MiniLMEmbedder(threads, max_length, batch_size)

        def __call__(self, input):
            return list(self._embedder.embed(list(input)))

        @staticmethod
        def name() -> str:
            return "safescale-" + EMBEDDING_NAME

        def get_config(self) -> dict[str, Any]:
            return dict(self._cfg)

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> OfflineMiniLM:
            return OfflineMiniLM(**config)

        def default_space(self) -> Literal["cosine"]:
            return "cosine"

        def supported_spaces(self) -> list[Literal["cosine", "l2", "ip"]]:
            return ["cosine"]

    return chromadb, OfflineMiniLM


_CACHE: dict[str, Any] = {}


def _client(path: Path):
    chromadb, ef_class = _CACHE.get("mod") or _CACHE.setdefault("mod", _chroma())
    from chromadb.config import Settings

    client = chromadb.PersistentClient(
        path=str(path), settings=Settings(anonymized_telemetry=False, allow_reset=False)
    )
    return client, ef_class


def build_dense_index(
    chunks: list[Chunk],
    path: str | Path,
    threads: int = 1,
    max_length: int = 256,
    batch_size: int = 8,
    hnsw: dict[str, int] | None = None,
) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    client, ef_class = _client(path)
    ef = ef_class(threads=threads, max_length=max_length, batch_size=batch_size)
    hnsw = {"max_neighbors": 64, "ef_construction": 400, "ef_search": 400, **(hnsw or {})}
    collection = client.create_collection(
        COLLECTION,
        embedding_function=ef,
        configuration={"hnsw": {"space": "cosine", **hnsw}},
    )
    for start in range(0, len(chunks), _MAX_ADD):
        batch = chunks[start : start + _MAX_ADD]
        collection.add(
            ids=[c.chunk_id for c in batch],
            documents=[c.indexed_text for c in batch],
            metadatas=[{"passage_id": c.passage_id} for c in batch],
        )


class DenseIndex:
    """Read-only view of a built collection; queries embed with the same function.

    The embedder's settings (max_length, batch size) come from the collection's
    stored configuration, so queries are encoded exactly as the documents were;
    only the thread count is the reader's own.
    """

    def __init__(self, path: str | Path, threads: int = 1):
        client, ef_class = _client(Path(path))
        self._collection = client.get_collection(COLLECTION)
        stored = (self._collection.configuration or {}).get("embedding_function")
        if stored is None or stored.name() != ef_class.name():
            found = stored.name() if stored is not None else "none recorded"
            raise ValueError(
                f"{path}: collection {COLLECTION!r} was built with embedding function "
                f"{found}, expected {ef_class.name()}; rebuild it with the index_dense rule"
            )
        self.embedder_config: dict[str, Any] = {**stored.get_config(), "threads": threads}
        self._ef = ef_class(**self.embedder_config)
        self.count = self._collection.count()

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        k = min(k, self.count)
        res = self._collection.query(
            query_embeddings=self._ef([query]), n_results=k, include=["distances"]
        )
        pairs = zip(res["ids"][0], res["distances"][0], strict=True)
        # cosine distance -> similarity; ties broken by id for a stable order
        hits = [(cid, 1.0 - float(d)) for cid, d in pairs]
        return sorted(hits, key=lambda h: (-round(h[1], 6), h[0]))
