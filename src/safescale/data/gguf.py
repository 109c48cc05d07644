"""Read one metadata value from a GGUF file's header, without loading the model.

Why: the quantization of a model (Q4_K_M, Q8_0, ...) is recorded in the GGUF
itself (``general.file_type``), so the registry need not repeat it. Loading the
model, even vocab-only, takes seconds and prints llama.cpp logs; the header is a
short key-value list read here in milliseconds.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

from safescale.data.models import ModelSpec
from safescale.errors import ModelError

#: GGUF value type -> struct format of one scalar (8 = string, 9 = array: special).
_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
#: llama.cpp ORs this bit into general.file_type when the type was guessed.
_GUESSED = 1024


def _read(fh: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = fh.read(size)
    if len(data) != size:
        raise EOFError("GGUF header ends early")
    return struct.unpack(fmt, data)[0]


def _string(fh: BinaryIO) -> str:
    n = _read(fh, "<Q")
    data = fh.read(n)
    if len(data) != n:
        raise EOFError("GGUF header ends early")
    return data.decode("utf-8", errors="replace")


def _value(fh: BinaryIO, kind: int, keep: bool) -> Any:
    """Read (keep=True) or skip one value of GGUF type ``kind``."""
    if kind == _STRING:
        return _string(fh)
    if kind == _ARRAY:
        item, count = _read(fh, "<I"), _read(fh, "<Q")
        if item in _SCALARS and not keep:
            fh.seek(count * struct.calcsize(_SCALARS[item]), 1)
            return None
        return [_value(fh, item, keep) for _ in range(count)]
    if kind not in _SCALARS:
        raise ValueError(f"unknown GGUF value type {kind}")
    return _read(fh, _SCALARS[kind])


def gguf_metadata_value(path: str | Path, key: str) -> Any:
    """The value of ``key`` in the GGUF header of ``path``, or None when absent."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ModelError(f"{path} is not a GGUF file (no GGUF magic number)")
            version = _read(fh, "<I")
            if version < 2:
                raise ModelError(f"{path}: GGUF version {version} is not supported (need >= 2)")
            _read(fh, "<Q")  # tensor count
            n_kv = _read(fh, "<Q")
            for _ in range(n_kv):
                name = _string(fh)
                kind = _read(fh, "<I")
                value = _value(fh, kind, keep=name == key)
                if name == key:
                    return value
    except (EOFError, ValueError, struct.error) as exc:
        raise ModelError(f"{path}: unreadable GGUF header ({exc})") from None
    return None


def file_type_names() -> dict[int, str]:
    """llama.cpp's general.file_type codes and their names (Q4_K_M, Q8_0, F16, ...),
    from the llama_cpp bindings' own constants."""
    import llama_cpp

    names = {}
    for attr in dir(llama_cpp):
        for prefix in ("LLAMA_FTYPE_MOSTLY_", "LLAMA_FTYPE_ALL_"):
            if attr.startswith(prefix):
                names[int(getattr(llama_cpp, attr))] = attr.removeprefix(prefix)
    return names


def gguf_quantization(path: str | Path) -> str | None:
    """The quantization name recorded in the GGUF (``general.file_type``), or None."""
    code = gguf_metadata_value(path, "general.file_type")
    if code is None:
        return None
    code = int(code) & ~_GUESSED
    return file_type_names().get(code, f"file_type {code}")


def model_quantization(spec: ModelSpec, path: Path) -> tuple[str | None, str | None]:
    """(quantization, where it came from): the GGUF's general.file_type, else the
    registry's ``quantization``; a registry value the GGUF contradicts is an error."""
    recorded = gguf_quantization(path)
    if recorded and spec.quantization and recorded != spec.quantization:
        raise ModelError(
            f"model '{spec.name}': the registry says quantization {spec.quantization}, "
            f"but {path} records {recorded} (general.file_type); correct the registry entry"
        )
    if recorded:
        return recorded, "gguf general.file_type"
    return (spec.quantization, "registry") if spec.quantization else (None, None)
