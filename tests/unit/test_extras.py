"""The optional extras: a shell whose extra is missing stops with one line naming the extra."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from rag.errors import MissingExtraError, RagError


def _hide(monkeypatch: pytest.MonkeyPatch, missing: str, *reimport: str) -> None:
    """Make ``missing`` unimportable and forget ``reimport`` so the next import runs again."""
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in reimport):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, missing, None)


@pytest.mark.parametrize(
    ("package", "missing", "extra"),
    [("ui.app", "gradio", "ui"), ("api.app", "fastapi", "api"), ("api.server", "uvicorn", "api")],
)
def test_a_shell_without_its_extra_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, package: str, missing: str, extra: str
) -> None:
    _hide(monkeypatch, missing, package.split(".")[0])
    with pytest.raises(MissingExtraError) as info:
        importlib.import_module(package)
    message = str(info.value)
    assert isinstance(info.value, RagError)  # the shells print RagError as one line
    assert "\n" not in message
    assert missing in message and f"groundedchat[{extra}]" in message


def test_evals_plots_without_matplotlib_name_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from evals.report import write_plots

    _hide(monkeypatch, "matplotlib", "matplotlib")
    with pytest.raises(MissingExtraError, match=r"groundedchat\[evals\]"):
        write_plots({"metrics": {}}, tmp_path)


def test_openai_backend_without_langchain_openai_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rag.llm import get_llm
    from rag.settings import Settings

    _hide(monkeypatch, "langchain_openai", "langchain_openai")
    settings = Settings(llm={"backend": "openai", "base_url": "http://127.0.0.1:9/v1"})
    with pytest.raises(MissingExtraError, match=r"groundedchat\[openai\]"):
        get_llm(settings)


@pytest.mark.parametrize(
    ("command", "missing", "extra"), [("ui", "gradio", "ui"), ("serve", "fastapi", "api")]
)
def test_rag_command_without_its_extra_is_one_line(
    monkeypatch: pytest.MonkeyPatch, command: str, missing: str, extra: str
) -> None:
    from typer.testing import CliRunner

    from rag_cli.app import app

    _hide(monkeypatch, missing, "ui", "api")
    result = CliRunner().invoke(app, [command])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:")
    assert f"groundedchat[{extra}]" in lines[0]
    assert "Traceback" not in result.output
