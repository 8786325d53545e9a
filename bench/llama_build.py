"""The portable llama.cpp build against a ``-march=native`` build: build time, prompt and
decode tokens/s, measured in one run, interleaved.

    python bench/llama_build.py --build          # build both wheels (minutes each), then measure
    python bench/llama_build.py --wheel portable=W1 --wheel native=W2   # measure given wheels

Each wheel is unpacked into its own folder and the real generation runs in a child process
(``rag.llama.probe``) with that folder first on ``PYTHONPATH``, so the venv is untouched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from common import MODELS_DIR, ROOT, machine, write_json  # type: ignore[import-not-found]

from rag.llama import cpu
from rag.llama.probe import run_probe
from rag.llm import QWEN_FILENAME

NATIVE_ARGS = "-DGGML_NATIVE=ON -DLLAVA_BUILD=OFF"  # llama.cpp's default: -march=native


def build_wheel(args: str, out: Path) -> tuple[Path, float]:
    env = dict(os.environ, CMAKE_ARGS=args, CMAKE_BUILD_PARALLEL_LEVEL="2")
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-cache-dir",
            "-w",
            str(out),
            "llama-cpp-python==0.3.36",
        ],
        check=True,
        env=env,
    )
    return next(out.glob("llama_cpp_python-*.whl")), time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", action="store_true", help="build both wheels first")
    ap.add_argument("--wheel", action="append", default=[], help="LABEL=PATH")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=8, help="prompt length (paragraph copies)")
    ap.add_argument("--max-tokens", type=int, default=64)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="llama-bench-"))
    wheels: dict[str, Path] = {}
    build_s: dict[str, float] = {}
    if args.build:
        for label, cmake in (("portable", cpu.cmake_args()), ("native", NATIVE_ARGS)):
            print(f"building {label}: {cmake}", flush=True)
            wheels[label], build_s[label] = build_wheel(cmake, work / f"wheel-{label}")
            print(f"  {build_s[label]:.0f} s", flush=True)
    for spec in args.wheel:
        label, _, path = spec.partition("=")
        wheels[label] = Path(path)
    model = MODELS_DIR / QWEN_FILENAME
    sites: dict[str, Path] = {}
    for label, wheel in wheels.items():
        sites[label] = work / f"site-{label}"
        zipfile.ZipFile(wheel).extractall(sites[label])
    rates: dict[str, dict[str, list[float]]] = {k: {"prompt": [], "decode": []} for k in wheels}
    extra = ("--repeat", str(args.repeat), "--max-tokens", str(args.max_tokens))
    for r in range(args.rounds):
        for label, site in sites.items():  # interleaved: drift hits both builds alike
            env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{ROOT}")
            res = run_probe(model, threads=2, extra_args=extra, env=env)
            if not res.ok:
                print(f"{label}: {res.describe()}", file=sys.stderr)
                return 1
            rates[label]["prompt"].append(res.prompt_tps)
            rates[label]["decode"].append(res.decode_tps)
            print(
                f"round {r + 1} {label}: prompt {res.prompt_tps:.0f} tok/s "
                f"({res.prompt_tokens} tokens), decode {res.decode_tps:.1f} tok/s",
                flush=True,
            )
    med = {k: {m: statistics.median(v) for m, v in d.items()} for k, d in rates.items()}
    print(f"\n| build | build time | prompt tok/s (median of {args.rounds}) | decode tok/s |")
    print("|---|---|---|---|")
    for label in wheels:
        bt = f"{build_s[label]:.0f} s" if label in build_s else "n/a"
        print(f"| {label} | {bt} | {med[label]['prompt']:.0f} | {med[label]['decode']:.1f} |")
    if {"portable", "native"} <= med.keys():
        for m in ("prompt", "decode"):
            print(f"portable/native {m}: {med['portable'][m] / med['native'][m]:.3f}")
    write_json(
        "llama_build",
        {
            "machine": machine(),
            "build_s": build_s,
            "rates": rates,
            "median": med,
            "load": os.getloadavg(),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
