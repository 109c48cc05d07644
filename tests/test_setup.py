"""Setup files agree with each other: environment.yml mirrors the lock, docs match the schema."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import ROOT


def test_environment_yml_mirrors_lock():
    lock = {
        line.strip()
        for line in (ROOT / "requirements/lock.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert lock == {p for p in pip if "==" in p and not p.startswith("llama-cpp-python")}


def test_config_readme_is_generated_from_schema():
    res = subprocess.run(
        [sys.executable, str(ROOT / "tools/config_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make reproduce" in readme
    commands = [
        line
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"]


def test_shipped_configs_validate():
    from safescale.config import load_config, selected_models

    for name in (
        "config/config.yaml",
        "config/full.yaml",
        "config/study_gpu.yaml",
        ".test/config/config.yaml",
    ):
        config = load_config(ROOT / name)
        assert selected_models(config), name


# Draft 2020-12 keywords (and draft-07's `definitions`/`dependencies`): anything
# else in a schema node is a typo or a YAML accident, such as the stray key an
# unquoted comma makes in a flow mapping (`{description: CSV, TSV}`).
JSON_SCHEMA_KEYWORDS = frozenset(
    [
        "$schema",
        "$id",
        "$ref",
        "$comment",
        "$defs",
        "definitions",
        "title",
        "description",
        "type",
        "enum",
        "const",
        "default",
        "examples",
        "properties",
        "patternProperties",
        "additionalProperties",
        "required",
        "items",
        "prefixItems",
        "additionalItems",
        "contains",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "oneOf",
        "anyOf",
        "allOf",
        "not",
        "if",
        "then",
        "else",
        "dependencies",
        "dependentRequired",
        "dependentSchemas",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "readOnly",
        "writeOnly",
        "deprecated",
    ]
)
_NAMED_SUBSCHEMAS = ("properties", "patternProperties", "$defs", "definitions")
_SUBSCHEMA = ("items", "additionalProperties", "not", "if", "then", "else", "contains")
_SUBSCHEMA_LISTS = ("oneOf", "anyOf", "allOf", "prefixItems")


def unknown_schema_keys(node: object, where: str = "") -> list[str]:
    """'path: key' for every key of a schema node that is no JSON-Schema keyword."""
    if not isinstance(node, dict):
        return []
    found = [f"{where or '/'}: {key!r}" for key in node if key not in JSON_SCHEMA_KEYWORDS]
    for key, value in node.items():
        if key in _NAMED_SUBSCHEMAS:
            for name, sub in value.items():
                found += unknown_schema_keys(sub, f"{where}/{name}")
        elif key in _SUBSCHEMA:
            found += unknown_schema_keys(value, f"{where}/{key}")
        elif key in _SUBSCHEMA_LISTS:
            for i, sub in enumerate(value):
                found += unknown_schema_keys(sub, f"{where}/{key}[{i}]")
    return found


def test_schema_uses_only_json_schema_keywords():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    assert unknown_schema_keys(schema) == []
    # The walk sees nested nodes: a broken flow mapping is caught.
    broken = yaml.safe_load("properties: {path: {type: string, description: CSV, TSV}}")
    assert unknown_schema_keys(broken) == ["/path: 'TSV'"]


def test_descriptions_are_whole_sentences():
    """No description cut at a comma: each ends like a sentence."""
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())

    def descriptions(node: dict, where: str = ""):
        for name, sub in node.get("properties", {}).items():
            yield f"{where}{name}", sub.get("description", "")
            yield from descriptions(sub, f"{where}{name}.")

    cut = [name for name, text in descriptions(schema) if not text.rstrip().endswith((".", ")"))]
    assert cut == []


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    suffixes = {".md", ".py", ".smk", ".yaml", ".yml", ".toml", ".sh", ".rst", ".txt", ""}
    return [ROOT / p for p in listed if Path(p).suffix in suffixes and (ROOT / p).is_file()]


def test_docs_stand_on_their_own():
    """No pointer to notes outside the repository; every docs/*.md named exists."""
    outside = re.compile(r"\.\./" + r"shared|/work/" + r"shared|" + r"STYLE \"")
    named_doc = re.compile(r"\bdocs/([A-Z_]+\.md)")
    found, missing = [], []
    for path in _tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in outside.finditer(text)]
        missing += [
            f"{path.relative_to(ROOT)}: docs/{name}"
            for name in named_doc.findall(text)
            if not (ROOT / "docs" / name).exists()
        ]
    assert found == []
    assert missing == []
    assert "docs/METHOD.md" in (ROOT / "README.md").read_text()


def test_slow_marks_the_real_model_and_end_to_end_tests():
    """`pytest -m "not slow"` leaves out what loads a GGUF or runs the DAG, and nothing else."""
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-m",
            "slow",
            "-p",
            "no:cacheprovider",
            "tests/test_e2e.py",
            "tests/test_llama_engine.py",
            "tests/test_parsing.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    selected = {line.split("::")[0] for line in res.stdout.splitlines() if "::" in line}
    assert selected == {"tests/test_e2e.py", "tests/test_llama_engine.py"}, res.stdout[-2000:]
    assert "tests/test_llama_engine.py::test_pure_temperature_is_the_default" not in res.stdout
