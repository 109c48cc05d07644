"""Token-window chunking with overlap, cut between words, and stable ids."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from safescale.data.corpus import Passage


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


def word_windows(word_ids: Sequence[int | None], size: int, overlap: int) -> list[tuple[int, int]]:
    """Token windows [start, end) of at most `size` tokens that cut only between words.

    A window ends before a word it would split, and the next starts at the first
    piece of the word `overlap` tokens back (so windows share at least `overlap`
    tokens) or, where that would not move past the previous start, at the next
    word (sharing fewer). Windows always cover the text; a cut falls inside a word
    only where one word is longer than what is left of a window. With one token
    per word these are the plain windows of `size` tokens sharing exactly `overlap`.
    """
    if overlap >= size:
        raise ValueError(f"chunk overlap ({overlap}) must be smaller than chunk size ({size})")
    n = len(word_ids)

    def inside_word(i: int) -> bool:  # token i continues the word of token i - 1
        return 0 < i < n and word_ids[i] is not None and word_ids[i] == word_ids[i - 1]

    def cut(start: int) -> int:  # the end of the window from `start`
        raw_end = min(start + size, n)
        end = raw_end
        while end > start and inside_word(end):
            end -= 1
        return end if end > start else raw_end

    windows: list[tuple[int, int]] = []
    start = 0
    while True:
        end = cut(start)
        if windows and end <= windows[-1][1]:  # would add nothing: go on from there
            start = windows[-1][1]
            end = cut(start)
        windows.append((start, end))
        if end >= n:
            return windows
        back = forward = end - overlap
        while back > start and inside_word(back):
            back -= 1
        while forward < end and inside_word(forward):
            forward += 1
        start = next(c for c in (back, forward, end - overlap, end) if c > start)


def chunk_passages(passages: Iterable[Passage], tokenizer, size: int, overlap: int) -> list[Chunk]:
    """Cut each passage's text between words, keeping the original characters."""
    chunks: list[Chunk] = []
    for p in passages:
        enc = tokenizer.encode(p.text, add_special_tokens=False)
        offsets = enc.offsets
        if not offsets:
            continue
        for j, (start, end) in enumerate(word_windows(enc.word_ids, size, overlap)):
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
