"""Helpers for the tests that start a real server process: a free port, and stopping it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

RAG_CLI = (sys.executable, "-m", "rag_cli")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server process; kill it if it has not stopped within 15 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def run_rag(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    cwd: Path | None = None,
    cli: Sequence[str] = RAG_CLI,
) -> subprocess.CompletedProcess[str]:
    """``rag ARGS`` in a child process (``python -m rag_cli`` unless ``cli`` names the console
    script), its output captured as text."""
    return subprocess.run(
        [*cli, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd
    )


def chroma_command() -> list[str]:
    """The ``chroma`` console script beside this interpreter, or the same entry point via -c.

    (``python -m chromadb.cli.cli`` does not work: the module has no ``__main__`` block.)
    """
    script = Path(sys.executable).parent / "chroma"
    if script.is_file():
        return [str(script)]
    found = shutil.which("chroma")
    if found:
        return [found]
    return [
        sys.executable,
        "-c",
        "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; sys.exit(app())",
    ]


def launch_chroma(path: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``chroma run`` on 127.0.0.1:port with its data in ``path``, started (not yet answering:
    ``wait_for_chroma``)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                *chroma_command(),
                "run",
                "--path",
                str(path),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_for_chroma(
    proc: subprocess.Popen[bytes], port: int, log: Path, timeout_s: float = 60.0
) -> None:
    """Return once the heartbeat of ``proc`` (from ``launch_chroma``) answers; raises
    ``RuntimeError`` with the end of its log if it exits or does not answer in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"chroma run exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2
            ) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(
                f"chroma run did not answer within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.05)


def start_chroma(
    path: Path, port: int, log: Path, timeout_s: float = 60.0
) -> subprocess.Popen[bytes]:
    """``chroma run`` on 127.0.0.1:port with its data in ``path``, once its heartbeat answers;
    raises ``RuntimeError`` with the end of its log if it exits or does not answer in time."""
    proc = launch_chroma(path, port, log)
    wait_for_chroma(proc, port, log, timeout_s)
    return proc
