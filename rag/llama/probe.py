"""Prove the llama.cpp build runs on this CPU: a real short generation in a child process.

A build that executes an instruction the machine cannot run (AMX tiles on a VM that forbids
them, AVX-512 in a ``.venv`` copied from another CPU) dies with a signal inside native code,
where Python cannot catch it. Running the first generation in a child turns that into a
return code the caller can act on. ``python -m rag.llama.probe --model PATH`` is the child.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PROMPT = (
    "Read the paragraph and answer in one short sentence.\n\n"
    "Paragraph: The Lumen Institute was founded in 1987 in Porto. It studies river basins, "
    "and a second office opened in Lyon in 2015.\n\nQuestion: Where was the Lumen Institute "
    "founded?"
)
MAX_TOKENS = 16


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    returncode: int
    signal: str | None = None  # e.g. "SIGSEGV" when the child died on a signal
    error: str | None = None  # one line
    text: str = ""
    prompt_tokens: int = 0
    prompt_tps: float = 0.0
    decode_tokens: int = 0
    decode_tps: float = 0.0
    system_info: str = ""
    seconds: float = 0.0

    def describe(self) -> str:
        if self.ok:
            return (
                f"prompt {self.prompt_tps:.0f} tok/s ({self.prompt_tokens} tokens), "
                f"decode {self.decode_tps:.1f} tok/s"
            )
        if self.signal:
            return f"the test generation died with {self.signal}"
        return self.error or f"the test generation failed (exit {self.returncode})"


def run_probe(
    model_path: Path,
    threads: int | None = None,
    timeout_s: float = 180,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> ProbeResult:
    """Run one short real generation in a child process and report how it ended."""
    cmd = [sys.executable, "-m", "rag.llama.probe", "--model", str(model_path), *extra_args]
    if threads:
        cmd += ["--threads", str(threads)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return ProbeResult(
            ok=False, returncode=124, error=f"the test generation took over {timeout_s:.0f} s"
        )
    seconds = time.perf_counter() - t0
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return ProbeResult(ok=False, returncode=proc.returncode, signal=name, seconds=seconds)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return ProbeResult(ok=False, returncode=proc.returncode, error=last, seconds=seconds)
    data = json.loads(lines[-1])
    return ProbeResult(ok=True, returncode=0, seconds=seconds, **data)


def build_fingerprint(model_path: Path) -> str:
    """Changes when the llama.cpp libraries, the CPU or the model file change."""
    from rag.llama import cpu

    parts = [cpu.cpu_model(), " ".join(sorted(cpu.cpu_flags()))]
    try:
        import llama_cpp

        lib = Path(llama_cpp.__file__).parent / "lib"
        for f in sorted(lib.glob("*.so*")):
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{int(st.st_mtime)}")
    except ImportError:
        parts.append("no-llama_cpp")
    st = model_path.stat()
    parts.append(f"{model_path.resolve()}:{st.st_size}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def stamp_path(cache_dir: Path, model_path: Path) -> Path:
    return cache_dir / f"llm-probe-{build_fingerprint(model_path)}.json"


def ensure_runs(
    model_path: Path, cache_dir: Path, threads: int | None = None
) -> ProbeResult | None:
    """Probe once per (build, CPU, model); later calls read the stamp. Returns the failed
    result, or None when the build is known to run."""
    stamp = stamp_path(cache_dir, model_path)
    if stamp.is_file():
        return None
    result = run_probe(model_path, threads)
    if result.ok:
        cache_dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(asdict(result)) + "\n")
        return None
    return result


def _child(model: str, threads: int | None, repeat: int = 1, max_tokens: int = MAX_TOKENS) -> int:
    os.environ.setdefault("LLAMA_LOG_LEVEL", "error")
    from llama_cpp import Llama, llama_print_system_info

    system_info = llama_print_system_info().decode(errors="replace").strip()
    llm = Llama(model_path=model, n_ctx=2048, n_threads=threads, seed=0, verbose=False, n_batch=512)
    prompt = "\n\n".join([PROMPT.split("\n\nQuestion")[0]] * (repeat - 1) + [PROMPT])
    messages = [{"role": "user", "content": prompt}]
    prompt_tokens = len(llm.tokenize(prompt.encode()))
    t0 = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    for chunk in llm.create_chat_completion(
        messages=messages, max_tokens=max_tokens, temperature=0.0, top_k=1, stream=True
    ):
        delta = chunk["choices"][0]["delta"].get("content")  # type: ignore[index]
        if delta:
            if first is None:
                first = time.perf_counter()
            pieces.append(delta)
    end = time.perf_counter()
    first = first or end
    decoded = len(llm.tokenize("".join(pieces).encode(), add_bos=False))
    print(
        json.dumps(
            {
                "text": "".join(pieces).strip(),
                "prompt_tokens": prompt_tokens,
                "prompt_tps": round(prompt_tokens / max(first - t0, 1e-6), 1),
                "decode_tokens": decoded,
                "decode_tps": round(max(decoded - 1, 0) / max(end - first, 1e-6), 1),
                "system_info": system_info,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="longer prompt (benchmarks)")
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    args = parser.parse_args()
    sys.exit(_child(args.model, args.threads, args.repeat, args.max_tokens))
