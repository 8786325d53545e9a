"""Crash safety and one index shared by several processes (real embedder, real Chroma).

``rag ingest`` is killed with SIGKILL at random points while it writes; the next run must
leave exactly the index a clean run builds. A second writer must give up promptly with a clear
"index busy" message while the lock is held, and readers must not hang while an ingest holds the
lock.
"""

from __future__ import annotations

import json
import os
import random
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.embedding import index_model_name
from rag.ingest import index_lock, ingest
from rag.settings import Settings
from tests.fakes import HashingEmbedder, clear_rag_env
from tests.paths import MODELS
from tests.servers import RAG_CLI

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
N_PARAS = 120  # SQuAD paragraphs: a few seconds of real embedding
SQUAD = ROOT.parent / "shared" / "data" / "squad-v2-dev" / "dev-v2.0.json"

# Ingest in-process with progress lines on stdout, so the test can kill it mid-write.
# Small embedding batches make many separate Chroma writes. The process starts (imports) and
# waits for a line on stdin before it reads the settings and ingests: the test starts the next
# run's process while this one runs.
INGEST_SCRIPT = """
import sys
from pathlib import Path
from rag.ingest import ingest
from rag.settings import Settings
if sys.stdin.readline().strip() != "go":  # the test ended before this run's turn
    sys.exit(0)
s = Settings(corpus_dir=Path(sys.argv[1]), db_dir=Path(sys.argv[2]), data_dir=Path(sys.argv[3]))
def progress(done, total):
    print(f"progress {done} {total}", flush=True)
r = ingest(s, progress=progress)
print(f"done {r.chunks} {r.chunks_added}", flush=True)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        {
            "RAG_EMBEDDING__BATCH_SIZE": "2",
            # the packaged models' folder, with the ONNX export setup made: each child process
            # would otherwise export the model again into its own tmp data folder (~10 s each)
            "RAG_MODELS_DIR": str(MODELS),
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def squad_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SQUAD.exists():
        pytest.fail(f"{SQUAD} is not available (../shared must be beside the repo)")
    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    corpus = tmp_path_factory.mktemp("squad") / "corpus"
    corpus.mkdir()
    n = 0
    for article in data["data"]:
        paras = [p["context"] for p in article["paragraphs"]][: N_PARAS - n]
        title = article["title"].replace("/", "_")
        body = f"# {article['title'].replace('_', ' ')}\n\n" + "\n\n".join(paras) + "\n"
        (corpus / f"{title}.md").write_text(body, encoding="utf-8")
        n += len(paras)
        if n >= N_PARAS:
            break
    return corpus


def _settings(corpus: Path, base: Path) -> Settings:
    return Settings(
        corpus_dir=corpus, db_dir=base / "db", data_dir=base / "data", models_dir=MODELS
    )


def _snapshots(*indexes: Settings) -> list[tuple[list[str], dict[str, dict]]]:
    """For each index: all ids (a list, to see duplicates) and id -> metadata, read in one
    fresh process (one Chroma client per index, none of this process's cached ones)."""
    code = (
        "import json,sys; from pathlib import Path; from rag.store import ChromaStore; "
        "from rag.settings import Settings\n"
        "for db in sys.argv[1:]:\n"
        "    c=ChromaStore(settings=Settings(db_dir=Path(db))).collection()\n"
        "    g=c.get(include=['metadatas'])\n"
        "    print(json.dumps([g['ids'], g['metadatas'], c.count()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *(str(s.index_dir) for s in indexes)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        check=True,
    ).stdout
    found = []
    for line in out.strip().splitlines()[-len(indexes) :]:
        ids, metas, count = json.loads(line)
        assert count == len(ids)
        found.append((ids, dict(zip(ids, metas, strict=True))))
    return found


def _snapshot(settings: Settings) -> tuple[list[str], dict[str, dict]]:
    """All ids (a list, to see duplicates) and id -> metadata, read in a fresh process."""
    return _snapshots(settings)[0]


def _start_rag(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """``rag ARGS`` started in a child process (as ``tests.servers.run_rag`` runs it)."""
    return subprocess.Popen(
        [*RAG_CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )


def _start_ingest(settings: Settings) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            INGEST_SCRIPT,
            str(settings.corpus_dir),
            str(settings.index_dir),
            str(settings.data_dir),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(),
        cwd=ROOT,
    )


def _go(proc: subprocess.Popen[str]) -> subprocess.Popen[str]:
    """Let a process from ``_start_ingest`` run its ingest."""
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.close()
    proc.stdin = None  # closed: nothing more for communicate() to send
    return proc


def _kill_after_progress(proc: subprocess.Popen[str], n_lines: int, timeout: float = 120) -> int:
    """SIGKILL ``proc`` once it printed ``n_lines`` progress lines; the lines seen."""
    assert proc.stdout is not None
    seen, deadline = 0, time.monotonic() + timeout
    # A selector, not select.select(): late in a long test session the pipe's descriptor can
    # be above 1023, which select() cannot watch.
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    while seen < n_lines and time.monotonic() < deadline:
        if sel.select(timeout=1.0):
            line = proc.stdout.readline()
            if not line:
                break
            seen += line.startswith("progress")
    sel.close()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return seen


@pytest.fixture
def runs() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes from ``_start_ingest``; one still running when the test ends is killed."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_killed_ingest_is_repaired_by_the_next_run(
    squad_corpus: Path, tmp_path: Path, runs: list[subprocess.Popen[str]]
) -> None:
    rnd = random.Random(int(os.environ.get("CRASH_SEED", "8")))
    clean = _settings(squad_corpus, tmp_path / "clean")
    crashy = _settings(squad_corpus, tmp_path / "crashy")
    kills = []
    # one process per run, each started (importing) while the one before it runs
    runs.append(_start_ingest(crashy))
    for _ in range(3):
        # 1 progress line = the plan is made and writing starts; later lines = batches written.
        n = rnd.randint(1, 6)
        proc = _go(runs[-1])
        runs.append(_start_ingest(crashy))
        time.sleep(rnd.uniform(0, 0.3))
        kills.append(_kill_after_progress(proc, n))
    assert kills, kills
    # The run after the kills finishes and matches a clean run exactly.
    resumed = _go(runs[-1])
    # The clean run (meanwhile, in this process): same code, fresh index. Chunk ids and
    # metadata do not depend on the vectors, so the instant fake embedder (under the real
    # model's name) builds the reference.
    fake = HashingEmbedder(model_name=index_model_name(clean.embedding))
    ref = ingest(clean, embedder=fake)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    done = [ln for ln in out.splitlines() if ln.startswith("done")]
    assert done, out
    (ids_crashy, meta_crashy), (ids_clean, meta_clean) = _snapshots(crashy, clean)
    assert len(ids_crashy) == len(set(ids_crashy)), "duplicate ids after crashes"
    assert sorted(ids_crashy) == sorted(ids_clean)
    assert meta_crashy == meta_clean
    assert int(done[0].split()[1]) == len(ids_clean) == ref.chunks
    # And a further run has nothing left to do (nothing is embedded, so the fake is never used).
    again = ingest(crashy, embedder=fake)
    assert (again.chunks_added, again.chunks_removed, again.chunks_unchanged) == (0, 0, ref.chunks)


def test_second_writer_gives_up_promptly_and_readers_do_not_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_rag_env(monkeypatch)  # this process indexes as the children (_env) read
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bhutan-qatar.md").write_bytes((ROOT / "corpus" / "bhutan-qatar.md").read_bytes())
    settings = _settings(corpus, tmp_path)
    db = str(settings.index_dir)
    paths = ("--corpus", str(corpus), "--db", db)
    ingest(settings)  # the real embedder, in this process: one of the processes sharing it
    before, _ = _snapshot(settings)
    (corpus / "extra.txt").write_text("The Zorbian lighthouse keeper logged forty storms.\n")

    lock = index_lock(settings)
    with lock.acquire(timeout=5):
        # Another writer and a reader, side by side, while an ingest holds the writer lock.
        t0 = time.monotonic()
        busy_env = _env(RAG_LOCK_TIMEOUT_S="1")
        busy_proc = _start_rag("ingest", *paths, env=busy_env, cwd=tmp_path)
        search = ("search", "Kathmandu Policy Forum", "--json", "-k", "2", *paths)
        reader_proc = _start_rag(*search, env=_env(), cwd=tmp_path)
        busy_out, busy_err = busy_proc.communicate(timeout=120)
        elapsed = time.monotonic() - t0
        reader_out, reader_err = reader_proc.communicate(timeout=120)
        # The writer: a clear one-line "busy" error, quickly, index unchanged.
        assert busy_proc.returncode != 0
        err = [ln for ln in busy_err.splitlines() if ln.strip()]
        assert len(err) == 1 and err[0].startswith("Error: the index is busy"), busy_err
        assert "Traceback" not in busy_err + busy_out
        assert elapsed < 60, elapsed
        # The reader: answers, does not wait for the lock.
        assert reader_proc.returncode == 0, reader_err
        hits = json.loads(reader_out)
        assert (hits[0]["source"], hits[0]["paragraph"]) == ("bhutan-qatar.md", 3)
    after, _ = _snapshot(settings)
    assert sorted(after) == sorted(before)
