"""Token-window chunking with overlap and stable ids."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from safescale.corpus import Passage


@dataclass(frozen=True)
class Chunk:
    chunk_id: str  # "<passage_id>#<j>": stable while the passage and settings are unchanged
    passage_id: str
    title: str
    text: str
    n_tokens: int

    @property
    def indexed_text(self) -> str:
        return f"{self.title}. {self.text}" if self.title else self.text


def window_starts(n_tokens: int, size: int, overlap: int) -> list[int]:
    """Starts of windows of `size` tokens, consecutive windows sharing `overlap` tokens."""
    if overlap >= size:
        raise ValueError(f"chunk overlap ({overlap}) must be smaller than chunk size ({size})")
    if n_tokens <= size:
        return [0]
    step = size - overlap
    starts = list(range(0, n_tokens - overlap, step))
    return [s for s in starts if s < n_tokens]


def chunk_passages(passages: Iterable[Passage], tokenizer, size: int, overlap: int) -> list[Chunk]:
    """Cut each passage's text at token boundaries, keeping the original characters."""
    chunks: list[Chunk] = []
    for p in passages:
        enc = tokenizer.encode(p.text, add_special_tokens=False)
        offsets = enc.offsets
        if not offsets:
            continue
        for j, start in enumerate(window_starts(len(offsets), size, overlap)):
            end = min(start + size, len(offsets))
            text = p.text[offsets[start][0] : offsets[end - 1][1]]
            chunks.append(Chunk(f"{p.passage_id}#{j}", p.passage_id, p.title, text, end - start))
    return chunks


def write_chunks(chunks: Iterable[Chunk], path: str | Path) -> None:
    with Path(path).open("w", encoding="utf-8") as fh:
        for c in chunks:
            fh.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")


def read_chunks(path: str | Path) -> list[Chunk]:
    with Path(path).open(encoding="utf-8") as fh:
        return [Chunk(**json.loads(line)) for line in fh if line.strip()]
