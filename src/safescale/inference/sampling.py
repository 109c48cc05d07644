"""Token sampling from logits, identical to llama.cpp's chain for the settings we use.

Filters are applied in llama.cpp's order (top-k, top-p, min-p, then temperature);
with top_k=0, top_p=1, min_p=0 this is pure temperature sampling, as in the study.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.7
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max()
    p = np.exp(z)
    return p / p.sum()


def token_distribution(logits: np.ndarray, s: SamplingSettings) -> np.ndarray:
    """Probabilities over the vocabulary after filters and temperature."""
    logits = logits.astype(np.float64)
    keep = np.ones(logits.shape[0], dtype=bool)
    if s.top_k and s.top_k < logits.shape[0]:
        kth = np.partition(logits, -s.top_k)[-s.top_k]
        keep &= logits >= kth
    if s.top_p < 1.0 or s.min_p > 0.0:
        base = softmax(np.where(keep, logits, -np.inf))
        if s.top_p < 1.0:
            order = np.argsort(-base, kind="stable")
            cum = np.cumsum(base[order])
            cutoff = np.searchsorted(cum, s.top_p) + 1
            mask = np.zeros_like(keep)
            mask[order[:cutoff]] = True
            keep &= mask
        if s.min_p > 0.0:
            keep &= base >= s.min_p * base.max()
    return softmax(np.where(keep, logits, -np.inf), s.temperature)


def draw(p: np.ndarray, rng: np.random.Generator) -> int:
    """Inverse-CDF draw: one uniform per token, so each sample's stream is independent."""
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(p) - 1))


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts (model, condition, question, sample, master seed)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
