"""``python -m rag.llama.build``: install llama-cpp-python built for this CPU and prove it runs.

Called by ``scripts/setup.sh`` after the packaged model is joined. Steps:

1. If llama-cpp-python is missing, or was built with other flags than this CPU's (a ``.venv``
   copied from another machine), build it with ``rag.llama.cpu.cmake_args("auto")``.
2. Run a real short generation in a child process (``rag.llama.probe``).
3. If the child died on a signal, rebuild once with the ``safe`` profile (AVX2 baseline, no
   AVX-512, no AMX) and probe again. If that fails too, stop with one line saying what failed
   and what to do.

Built wheels are cached per flag set in ``~/.cache/groundedchat/llama-wheels`` so a fresh
clone on the same machine does not compile again. ``RAG_LLAMA_BUILD=safe`` forces the safe
profile.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rag.llama import cpu
from rag.llama.probe import ProbeResult, run_probe

LLAMA_VERSION = "0.3.36"
RECORD = Path(sys.prefix) / "llama-build.json"
WHEEL_CACHE = Path(
    os.environ.get("RAG_WHEEL_CACHE", Path.home() / ".cache" / "groundedchat" / "llama-wheels")
)

Probe = Callable[[], ProbeResult]
Build = Callable[[str], None]


def read_record(path: Path = RECORD) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def llama_importable() -> bool:
    proc = subprocess.run(
        [sys.executable, "-c", "import llama_cpp"], capture_output=True, text=True
    )
    return proc.returncode == 0


def _pip(*args: str, env: dict[str, str] | None = None) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    subprocess.run(cmd, check=True, env=env)


def build(profile: str, record: Path = RECORD) -> None:
    """Build (or take from the wheel cache) llama-cpp-python for ``profile`` and install it."""
    args = cpu.cmake_args(profile=profile)
    key = hashlib.sha256(f"{LLAMA_VERSION} {args}".encode()).hexdigest()[:16]
    cache = WHEEL_CACHE / key
    wheels = sorted(cache.glob("llama_cpp_python-*.whl"))
    options = cpu.build_options(cpu.cpu_flags(), profile)
    isas = [opt.removeprefix("GGML_") for opt, on in options.items() if on]
    if not wheels:
        print(
            f"==> building llama-cpp-python {LLAMA_VERSION} for this CPU, profile {profile} "
            f"({' '.join(isas) or 'generic x86-64'}; about 3 minutes on 2 cores)",
            flush=True,
        )
        t0 = time.time()
        env = dict(os.environ, CMAKE_ARGS=args, CMAKE_BUILD_PARALLEL_LEVEL="2")
        tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        _pip(
            "wheel",
            "--no-deps",
            "--no-cache-dir",
            "-w",
            str(tmp),
            f"llama-cpp-python=={LLAMA_VERSION}",
            env=env,
        )
        if not cache.exists():
            tmp.replace(cache)
        wheels = sorted(cache.glob("llama_cpp_python-*.whl"))
        print(f"==> built in {time.time() - t0:.0f} s", flush=True)
    wheel = wheels[-1]
    _pip("install", "--force-reinstall", "--no-deps", str(wheel))
    _pip("install", f"{wheel}[server]")  # the server extra's pure-Python dependencies
    record.write_text(
        json.dumps(
            {
                "version": LLAMA_VERSION,
                "profile": profile,
                "cmake_args": args,
                "cpu": cpu.cpu_model(),
            },
            indent=2,
        )
        + "\n"
    )


def ensure(
    probe: Probe,
    build: Build = build,
    record: dict | None = None,
    installed: bool = True,
    want_profile: str = "auto",
    say: Callable[[str], None] = print,
) -> int:
    """Make the installed build one that runs here. Returns the process exit code."""
    current = record.get("cmake_args") if record else None
    profile = record.get("profile", want_profile) if record else want_profile
    if want_profile == "safe":
        profile = "safe"
    if not installed or current != cpu.cmake_args(profile=profile):
        build(profile)
    result = probe()
    if result.ok:
        say(f"==> LLM runs on this CPU (build {profile}): {result.describe()}")
        return 0
    if result.signal and profile != "safe":
        say(
            f"==> the llama.cpp build ({profile}) died with {result.signal} in a test "
            "generation; rebuilding once with the safe flags (AVX2, no AVX-512, no AMX)"
        )
        profile = "safe"
        build(profile)
        result = probe()
        if result.ok:
            say(f"==> LLM runs on this CPU (build safe): {result.describe()}")
            return 0
    if result.signal:
        say(
            f"Error: the local LLM cannot run on this CPU ({result.describe()} even with the "
            "safe llama.cpp build); use an OpenAI-compatible server instead "
            "(RAG_LLM__BACKEND=openai, see README) and send the output of `rag doctor` with "
            "your report."
        )
    else:
        say(f"Error: the local LLM test generation failed: {result.describe()}")
    return 1


def main() -> int:
    from rag.llm import packaged_model_path
    from rag.settings import Settings

    settings = Settings()
    if settings.llm.backend != "llamacpp":
        print("==> LLM backend is not llamacpp: nothing to build")
        return 0
    model = settings.llm.model_path or packaged_model_path(settings)

    def probe() -> ProbeResult:
        result = run_probe(Path(model), settings.llm.n_threads)
        if result.ok:  # the runtime guard in rag.llm reads this stamp instead of probing again
            from rag.llama.probe import stamp_path

            stamp = stamp_path(settings.model_cache_dir, Path(model))
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(json.dumps({"ok": True, "describe": result.describe()}) + "\n")
        return result

    return ensure(
        probe,
        record=read_record(),
        installed=llama_importable(),
        want_profile=os.environ.get("RAG_LLAMA_BUILD", "auto"),
    )


if __name__ == "__main__":
    sys.exit(main())
