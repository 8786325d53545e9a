"""Which x86 instruction sets this CPU offers, and the llama.cpp build flags that use only those.

Standard library only (``python rag/llama/cpu.py describe`` works before anything is installed).

Why explicit flags and not llama.cpp's own portable mechanisms:

- ``GGML_NATIVE=ON`` (the default) compiles with ``-march=native``. On an Intel VM whose CPUID
  advertises AMX but whose hypervisor does not let a process use tile registers, that build
  compiled the AMX kernels and died with SIGSEGV (``ldtilecfg``) on the first question.
- ``GGML_BACKEND_DL`` + ``GGML_CPU_ALL_VARIANTS`` builds every x86 variant (x64 … zen4,
  sapphirerapids) and picks one at run time from CPUID alone
  (``ggml-cpu/arch/x86/cpu-feats.cpp`` checks no OS support for AMX), so the same VM would load
  the AMX variant and crash the same way; it also compiles the CPU backend ~14 times.

So the build is ``GGML_NATIVE=OFF`` with each ISA switched on only when the kernel reports it
(``/proc/cpuinfo`` flags: the kernel hides AVX-512 when the OS does not save its state), AMX
always off, and setup proves the result runs with a real generation in a child process
(``rag.llama.probe``), falling back to the ``safe`` profile (AVX2 baseline, no AVX-512) if not.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

# llama.cpp CMake option -> the /proc/cpuinfo flag(s) that must all be present.
BASELINE = {
    "GGML_SSE42": ("sse4_2",),
    "GGML_AVX": ("avx",),
    "GGML_AVX2": ("avx2",),
    "GGML_FMA": ("fma",),
    "GGML_F16C": ("f16c",),
    "GGML_BMI2": ("bmi2",),
}
EXTENDED = {
    "GGML_AVX_VNNI": ("avx_vnni",),
    "GGML_AVX512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
    "GGML_AVX512_VBMI": ("avx512f", "avx512vbmi"),
    "GGML_AVX512_VNNI": ("avx512f", "avx512_vnni"),
    "GGML_AVX512_BF16": ("avx512f", "avx512_bf16"),
}
# Never compiled in: a CPU may advertise them while the OS or hypervisor forbids their use.
ALWAYS_OFF = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")
PROFILES = ("auto", "safe")

# Names llama.cpp's ``llama_print_system_info()`` uses for the same features.
SYSTEM_INFO_NAMES = {
    "GGML_SSE42": "SSE3",  # llama.cpp reports SSE3 (implied by SSE4.2); close enough for a match
    "GGML_AVX": "AVX",
    "GGML_AVX2": "AVX2",
    "GGML_FMA": "FMA",
    "GGML_F16C": "F16C",
    "GGML_BMI2": "BMI2",
    "GGML_AVX_VNNI": "AVX_VNNI",
    "GGML_AVX512": "AVX512",
    "GGML_AVX512_VBMI": "AVX512_VBMI",
    "GGML_AVX512_VNNI": "AVX512_VNNI",
    "GGML_AVX512_BF16": "AVX512_BF16",
}


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The feature flags the kernel reports for this CPU (empty off Linux/x86)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        if not path.is_file():
            return set()
        cpuinfo = path.read_text(errors="replace")
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_model(cpuinfo: str | None = None) -> str:
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(errors="replace") if path.is_file() else ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def build_options(flags: set[str], profile: str = "auto") -> dict[str, bool]:
    """CMake ISA switches for ``profile``: ``auto`` uses what ``flags`` offer; ``safe`` stops
    at the AVX2 baseline (or at plain x86-64 when even that is missing)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown build profile {profile!r}; use one of {', '.join(PROFILES)}")
    options = {opt: all(f in flags for f in need) for opt, need in BASELINE.items()}
    if not options["GGML_AVX2"]:  # no AVX2 baseline: a generic build
        options = dict.fromkeys(options, False)
    for opt, need in EXTENDED.items():
        options[opt] = profile == "auto" and options["GGML_AVX2"] and all(f in flags for f in need)
    options.update(dict.fromkeys(ALWAYS_OFF, False))
    return options


def cmake_args(flags: set[str] | None = None, profile: str = "auto") -> str:
    """The ``CMAKE_ARGS`` for building llama-cpp-python on this machine."""
    if flags is None:
        flags = cpu_flags()
    options = build_options(flags, profile)
    parts = ["-DGGML_NATIVE=OFF", "-DLLAVA_BUILD=OFF"]
    parts += [f"-D{opt}={'ON' if on else 'OFF'}" for opt, on in options.items()]
    return " ".join(parts)


def built_features(system_info: str) -> set[str]:
    """Features a llama.cpp build was compiled for, from ``llama_print_system_info()``
    (``"CPU : SSE3 = 1 | AVX = 1 | AVX512 = 1 | …"``)."""
    found: set[str] = set()
    for part in system_info.replace("\n", "|").split("|"):
        if "=" not in part:
            continue
        name, _, value = part.rpartition("=")
        name = name.split(":")[-1].strip()
        if value.strip() == "1":
            found.add(name)
    return found


def unsupported(built: set[str], flags: set[str]) -> list[str]:
    """Built-in features (llama.cpp names) that this CPU does not report, AMX always included."""
    offered = {
        SYSTEM_INFO_NAMES[opt]
        for opt, on in build_options(flags, "auto").items()
        if on and opt in SYSTEM_INFO_NAMES
    }
    missing = sorted(
        name
        for name in built
        if name in SYSTEM_INFO_NAMES.values() and name != "SSE3" and name not in offered
    )
    return missing + sorted(name for name in built if name.startswith("AMX"))


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "cmake-args":
        print(cmake_args(profile=argv[1] if len(argv) > 1 else "auto"))
        return 0
    if len(argv) >= 1 and argv[0] == "describe":
        flags = cpu_flags()
        print(json.dumps({"model": cpu_model(), "options": build_options(flags)}, indent=2))
        return 0
    print("usage: python rag/llama/cpu.py cmake-args [auto|safe] | describe", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
