"""The llama.cpp build: flags from what the CPU offers, and setup's crash path.

A build that dies on a signal in its test generation is rebuilt once with the safe flags; if
that dies too, setup stops with one clear line (never a UI that dies on its first question).
"""

from __future__ import annotations

import textwrap

import pytest

from rag.llama import build as llm_build
from rag.llama import cpu
from rag.llama.probe import ProbeResult, run_probe

AMX_VM = (
    "flags\t\t: fpu sse4_2 avx avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq "
    "avx512bw avx512vbmi avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16\n"
)
OLD_CPU = "flags\t\t: fpu sse4_2 avx\n"


def test_amx_is_never_built_even_when_the_cpu_advertises_it() -> None:
    flags = cpu.cpu_flags(AMX_VM)
    args = cpu.cmake_args(flags, "auto")
    assert "-DGGML_NATIVE=OFF" in args
    for amx in ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"):
        assert f"-D{amx}=OFF" in args
    assert "-DGGML_AVX512=ON" in args and "-DGGML_AVX2=ON" in args


def test_safe_profile_stops_at_avx2() -> None:
    options = cpu.build_options(cpu.cpu_flags(AMX_VM), "safe")
    assert options["GGML_AVX2"] and options["GGML_FMA"]
    assert not any(on for opt, on in options.items() if "AVX512" in opt or "AMX" in opt)


def test_cpu_without_avx2_gets_a_generic_build() -> None:
    options = cpu.build_options(cpu.cpu_flags(OLD_CPU), "auto")
    assert not any(options.values())


def test_built_features_not_offered_are_reported() -> None:
    info = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | AMX_INT8 = 1 |"
    bad = cpu.unsupported(
        cpu.built_features(info), cpu.cpu_flags("flags : sse4_2 avx avx2 fma f16c bmi2\n")
    )
    assert bad == ["AVX512", "AMX_INT8"]
    ok = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 0 |"
    assert cpu.unsupported(cpu.built_features(ok), cpu.cpu_flags(AMX_VM)) == []


def _crash(signal_name: str = "SIGSEGV") -> ProbeResult:
    return ProbeResult(ok=False, returncode=-11, signal=signal_name)


def _ok() -> ProbeResult:
    return ProbeResult(ok=True, returncode=0, prompt_tokens=40, prompt_tps=150, decode_tps=30)


class Recorder:
    def __init__(self, results: list[ProbeResult]) -> None:
        self.results = results
        self.builds: list[str] = []
        self.lines: list[str] = []

    def probe(self) -> ProbeResult:
        return self.results.pop(0)

    def build(self, profile: str) -> None:
        self.builds.append(profile)


def _record(profile: str) -> dict[str, str]:
    return {"profile": profile, "cmake_args": cpu.cmake_args(profile=profile)}


def test_a_crashing_build_is_rebuilt_with_safe_flags_and_setup_succeeds() -> None:
    r = Recorder([_crash(), _ok()])
    code = llm_build.ensure(r.probe, r.build, record=_record("auto"), say=r.lines.append)
    assert code == 0
    assert r.builds == ["safe"]
    assert "SIGSEGV" in r.lines[0] and "safe" in r.lines[0]


def test_a_build_that_still_crashes_stops_setup_with_one_clear_line() -> None:
    r = Recorder([_crash(), _crash("SIGILL")])
    code = llm_build.ensure(r.probe, r.build, record=_record("auto"), say=r.lines.append)
    assert code == 1
    assert r.builds == ["safe"]  # rebuilt once, not in a loop
    error = r.lines[-1]
    assert error.startswith("Error:") and "\n" not in error
    assert "SIGILL" in error and "RAG_LLM__BACKEND=openai" in error


def test_a_non_signal_failure_is_reported_without_rebuilding() -> None:
    r = Recorder([ProbeResult(ok=False, returncode=1, error="ValueError: bad gguf")])
    code = llm_build.ensure(r.probe, r.build, record=_record("auto"), say=r.lines.append)
    assert code == 1 and r.builds == []
    assert "bad gguf" in r.lines[-1]


def test_a_build_recorded_for_another_cpu_is_rebuilt_before_probing() -> None:
    """A copied .venv: its stamp must not hide a build made for other instruction sets."""
    other = {"profile": "auto", "cmake_args": cpu.cmake_args(cpu.cpu_flags(AMX_VM) | {"x"})}
    other["cmake_args"] += " -DGGML_SOMETHING_ELSE=ON"
    r = Recorder([_ok()])
    assert llm_build.ensure(r.probe, r.build, record=other, say=r.lines.append) == 0
    assert r.builds == ["auto"]


def test_a_missing_install_is_built() -> None:
    r = Recorder([_ok()])
    assert llm_build.ensure(r.probe, r.build, record=None, installed=False, say=r.lines.append) == 0
    assert r.builds == ["auto"]


def test_an_installed_matching_build_is_only_probed() -> None:
    r = Recorder([_ok()])
    assert llm_build.ensure(r.probe, r.build, record=_record("auto"), say=r.lines.append) == 0
    assert r.builds == []


def test_the_probe_turns_a_child_that_dies_on_a_signal_into_a_result(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real ``run_probe`` with a child that segfaults: setup gets a result, not a crash."""
    fake = tmp_path / "rag_fake"
    (fake / "rag" / "llama").mkdir(parents=True)
    (fake / "rag" / "__init__.py").write_text("")
    (fake / "rag" / "llama" / "__init__.py").write_text("")
    (fake / "rag" / "llama" / "probe.py").write_text(
        textwrap.dedent(
            """
            import os, signal
            os.kill(os.getpid(), signal.SIGSEGV)
            """
        )
    )
    monkeypatch.setenv("PYTHONPATH", str(fake))
    monkeypatch.chdir(fake)
    result = run_probe(tmp_path / "model.gguf", timeout_s=60)
    assert not result.ok
    assert result.signal == "SIGSEGV"
    assert "SIGSEGV" in result.describe()


def test_a_build_that_crashes_here_is_one_clear_error_not_a_dead_process(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rag ask` and the UI load the model through get_llm: a crashing build must surface as
    a RagError (one line in the CLI, an error message in the chat), never as SIGSEGV."""
    from rag import llm as llm_module
    from rag.errors import ModelNotAvailableError
    from rag.llama import probe as llm_probe
    from rag.settings import LLMSettings, Settings

    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    settings = Settings(data_dir=tmp_path, llm=LLMSettings(model_path=gguf))
    monkeypatch.setattr(llm_probe, "ensure_runs", lambda *a, **k: _crash())
    with pytest.raises(ModelNotAvailableError) as info:
        llm_module.get_llm(settings)
    message = str(info.value)
    assert "SIGSEGV" in message and "setup.sh" in message and "\n" not in message
