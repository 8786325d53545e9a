"""The installed llama.cpp build runs on this CPU, and `rag doctor` checks it for real."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from rag.llama import cpu
from rag.settings import Settings
from tests.servers import run_rag

pytestmark = [pytest.mark.integration, pytest.mark.llm]

AMX_INSTRUCTION = re.compile(r"\b(ldtilecfg|sttilecfg|tileloadd|tdpb[su][su]d|tdpbf16ps)\b")


def _llama_libs() -> list[Path]:
    import llama_cpp

    return sorted((Path(llama_cpp.__file__).parent / "lib").glob("*.so*"))


@pytest.mark.skipif(shutil.which("objdump") is None, reason="binutils' objdump not installed")
def test_installed_llama_cpp_contains_no_amx_tile_instruction() -> None:
    libs = _llama_libs()
    assert any("ggml-cpu" in lib.name for lib in libs), [lib.name for lib in libs]
    for lib in libs:
        dump = subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", str(lib)], capture_output=True, text=True
        )
        assert dump.returncode == 0, dump.stderr[-500:]
        hits = AMX_INSTRUCTION.findall(dump.stdout)
        assert not hits, f"{lib.name} contains AMX tile instructions: {sorted(set(hits))}"


def test_build_uses_only_instruction_sets_this_cpu_reports() -> None:
    from llama_cpp import llama_print_system_info

    built = cpu.built_features(llama_print_system_info().decode())
    assert "AVX2" in built or "AVX2" not in cpu.SYSTEM_INFO_NAMES.values()
    assert cpu.unsupported(built, cpu.cpu_flags()) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_rag_doctor_reports_every_component_ok(real_settings: Settings) -> None:
    env = dict(
        os.environ,
        RAG_DATA_DIR=str(real_settings.data_dir),
        RAG_MODELS_DIR=str(real_settings.model_cache_dir),
        RAG_UI__PORT=str(_free_port()),
    )
    env.pop("RAG_CHROMA_URL", None)
    corpus, db = str(real_settings.corpus_dir), str(real_settings.index_dir)
    proc = run_rag("doctor", "--corpus", corpus, "--db", db, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = {ln.split()[1]: ln for ln in proc.stdout.splitlines() if ln.startswith(("ok", "FAIL"))}
    assert set(lines) >= {"python", "cpu", "embedder", "llm", "index", "ui"}, proc.stdout
    assert all(ln.startswith("ok") for ln in lines.values()), proc.stdout
    assert re.search(r"decode \d+(\.\d)? tok/s", lines["llm"]), lines["llm"]
    assert re.search(r"expect ~\d+ s per answer", lines["llm"]), lines["llm"]
    assert re.search(r"\d+ vectors/s", lines["embedder"]), lines["embedder"]
    assert re.search(r"\d+ paragraphs, \d+ chunks", lines["index"]), lines["index"]


def test_rag_doctor_fails_with_a_missing_model_file(real_settings: Settings, tmp_path) -> None:
    env = dict(
        os.environ,
        RAG_DATA_DIR=str(real_settings.data_dir),
        RAG_LLM__MODEL_PATH=str(tmp_path / "missing.gguf"),
        RAG_UI__PORT=str(_free_port()),
    )
    proc = run_rag("doctor", "--db", str(real_settings.index_dir), env=env)
    assert proc.returncode != 0
    llm = [ln for ln in proc.stdout.splitlines() if ln.split()[1:2] == ["llm"]]
    assert llm and llm[0].startswith("FAIL"), proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
