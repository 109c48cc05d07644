"""Render config/README.md's key reference from the JSON Schema (one source of truth).

python tools/config_docs.py            # rewrite the reference section
python tools/config_docs.py --check    # exit 1 if it is stale (used by the tests)
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
README = ROOT / "config" / "README.md"
MARK = "<!-- generated from workflow/schemas/config.schema.yaml by tools/config_docs.py -->"


def rows(schema: dict, prefix: str = "") -> list[str]:
    out = []
    for key, spec in schema.get("properties", {}).items():
        name = f"{prefix}{key}"
        kind = spec.get("type", "")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        if "enum" in spec:
            kind += " (" + ", ".join(map(str, spec["enum"])) + ")"
        default = spec.get("default", "")
        if kind.startswith("object") and "properties" in spec:
            default = ""
        text = spec.get("description", "").replace("|", "\\|")
        out.append(
            f"| `{name}` | {kind} | `{default}` | {text} |"
            if default != ""
            else f"| `{name}` | {kind} | | {text} |"
        )
        if "properties" in spec:
            out += rows(spec, name + ".")
    return out


def render() -> str:
    schema = yaml.safe_load(SCHEMA.read_text())
    table = ["| key | type | default | meaning |", "|---|---|---|---|", *rows(schema)]
    return MARK + "\n" + "\n".join(table) + "\n"


def main() -> int:
    text = README.read_text()
    head = text.split(MARK)[0]
    new = head + render()
    if "--check" in sys.argv:
        if new != text:
            print("config/README.md is stale: run python tools/config_docs.py")
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
