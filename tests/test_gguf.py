"""The GGUF header reader that records a model's quantization (general.file_type)."""

from __future__ import annotations

import struct

import pytest

from safescale.data.gguf import gguf_metadata_value, gguf_quantization, model_quantization
from safescale.data.models import ModelError, parse_registry


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(path, file_type: int | None = 15):
    """A header-only GGUF (v3): a string, a string array and general.file_type (uint32)."""
    kv = [_string("general.architecture") + struct.pack("<I", 8) + _string("llama")]
    tokens = [_string(t) for t in ("<s>", "a", "b")]
    kv.append(
        _string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, len(tokens)) + b"".join(tokens)
    )
    kv.append(_string("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 3) + b"\0" * 12)
    if file_type is not None:
        kv.append(_string("general.file_type") + struct.pack("<II", 4, file_type))
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv))
    return path


def _spec(path, **fields):
    entry = {"name": "m", "family": "F", "params_b": 1, "source": {"path": str(path)}}
    return parse_registry([{**entry, **fields}])["m"]


def test_reads_values_past_arrays(tmp_path):
    path = write_gguf(tmp_path / "m.gguf")
    assert gguf_metadata_value(path, "general.architecture") == "llama"
    assert gguf_metadata_value(path, "general.file_type") == 15
    assert gguf_metadata_value(path, "no.such.key") is None
    assert gguf_quantization(path) == "Q4_K_M"
    assert gguf_quantization(write_gguf(tmp_path / "q8.gguf", 7 | 1024)) == "Q8_0"  # guessed bit


def test_quantization_from_gguf_else_registry(tmp_path):
    gguf = write_gguf(tmp_path / "m.gguf")
    assert model_quantization(_spec(gguf), gguf) == ("Q4_K_M", "gguf general.file_type")
    bare = write_gguf(tmp_path / "bare.gguf", None)
    assert model_quantization(_spec(bare), bare) == (None, None)
    spec = _spec(bare, quantization="Q8_0")
    assert model_quantization(spec, bare) == ("Q8_0", "registry")
    with pytest.raises(ModelError, match="registry says quantization Q8_0.*records Q4_K_M"):
        model_quantization(_spec(gguf, quantization="Q8_0"), gguf)


def test_bad_files_are_named(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"weights")
    with pytest.raises(ModelError, match="junk.gguf is not a GGUF file"):
        gguf_quantization(junk)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(write_gguf(tmp_path / "whole.gguf").read_bytes()[:40])
    with pytest.raises(ModelError, match="cut.gguf: unreadable GGUF header"):
        gguf_quantization(cut)
