"""Print the README's configuration table, generated from the ``Settings`` field descriptions.

    python scripts/settings_doc.py        # the Markdown table (README.md, "Configuration")

tests/unit/test_settings_doc.py checks that the README holds exactly this output.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rag.settings import Settings  # noqa: E402

PREFIX = str(Settings.model_config.get("env_prefix") or "RAG_")
DELIMITER = str(Settings.model_config.get("env_nested_delimiter") or "__")


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(hidden)"
    if isinstance(value, Path):
        return f"`{value.as_posix()}`"
    if isinstance(value, str):
        return f"`{value}`"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        variable = f"{prefix}{name.upper()}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += _rows(annotation, variable + DELIMITER)
            continue
        default = field.get_default(call_default_factory=True)
        meaning = " ".join((field.description or "").split())
        meaning = meaning.replace("|", "\\|").replace("<", "&lt;")  # Markdown, not HTML
        rows.append((f"`{variable}`", _default(default), meaning))
    return rows


def settings_table() -> str:
    """The Markdown table: one row per setting (environment variable, default, meaning)."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| {v} | {d} | {m} |" for v, d, m in _rows(Settings, PREFIX)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(settings_table())
