"""An index that cannot be used says why, in one line with what to do (issue 26).

Five situations used to read alike ("nothing is indexed yet"): a Chroma server that does not
answer, a ``--db`` that is a file, an index another ingest is still building, damaged index
files, and an index never built. Each is checked through the library call the shells use and
through ``rag status`` / ``rag search`` in-process. Real Chroma in tmp folders; the fake
embedder stands in for the model (no error here depends on it).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rag.chunk_store import chunk_store_dir
from rag.errors import (
    ChromaServerUnreachableError,
    IndexBusyError,
    IndexDamagedError,
    IndexLocationError,
    IndexNotFoundError,
    RagError,
)
from rag.ingest import index_lock
from rag.retrieval import HybridRetriever
from rag.settings import Settings
from rag.status import index_status
from rag_cli.app import app
from tests.fakes import clear_rag_env, copy_index, fake_embedder, use_fake_embedder
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "corpus" / "bhutan-qatar.md"


@dataclass
class Env:
    tmp: Path
    corpus: Path
    good: Settings  # a complete index, never damaged: copies of it are

    def settings(self, db: Path, **update: Any) -> Settings:
        return self.good.model_copy(update={"db_dir": db, **update})

    def copy(self, name: str) -> Settings:
        """A copy of the good index (its Chroma folder and chunk index) under a new name, as
        a new process would find it."""
        s = self.settings(self.tmp / name)
        shutil.copytree(self.good.index_dir, s.index_dir)
        shutil.copytree(chunk_store_dir(self.good).parent, chunk_store_dir(s).parent)
        return s


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed_built: Settings) -> Iterator[Env]:
    clear_rag_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    use_fake_embedder(monkeypatch)
    good = copy_index(seed_built, tmp_path, tmp_path / "good")  # as seed_index would build it
    yield Env(tmp_path, good.corpus_dir, good)


def _zero(path: Path) -> None:
    path.write_bytes(b"\0" * path.stat().st_size)


def _version(s: Settings) -> Path:
    return next(chunk_store_dir(s).glob("v*"))


#: how each damage is made on a copy of a good index
DAMAGE: dict[str, Callable[[Settings], None]] = {
    "chroma.sqlite3 zeroed": lambda s: _zero(s.index_dir / "chroma.sqlite3"),
    "chroma.sqlite3 truncated": lambda s: os.truncate(s.index_dir / "chroma.sqlite3", 4096),
    "chroma.sqlite3 emptied": lambda s: os.truncate(s.index_dir / "chroma.sqlite3", 0),
    "chunk texts zeroed": lambda s: _zero(_version(s) / "chunk_texts.bin"),
    "chunk texts truncated": lambda s: os.truncate(_version(s) / "chunk_texts.bin", 100),
    "chunk metadata truncated": lambda s: os.truncate(_version(s) / "chunks.json", 100),
    "chunk index manifest truncated": lambda s: os.truncate(chunk_store_dir(s) / "CURRENT", 10),
}


@dataclass
class Case:
    settings: Settings
    error: type[RagError]
    pattern: str  # of the one line the user sees
    env: dict[str, str]  # RAG_* variables the CLI needs to see the same index
    holding: AbstractContextManager[Any]


def make_case(env: Env, situation: str) -> Case:
    """The index of one situation, the error it must raise and the line a user must read."""
    if situation == "server unreachable":
        url = f"http://127.0.0.1:{free_port()}"
        return Case(
            env.settings(env.tmp / "unused", chroma_url=url),
            ChromaServerUnreachableError,
            rf"^cannot reach the Chroma server at {re.escape(url)} \(RAG_CHROMA_URL\): "
            "start it, or correct RAG_CHROMA_URL",
            {"RAG_CHROMA_URL": url},
            nullcontext(),
        )
    if situation == "db is a file":
        db = env.tmp / "index.txt"
        db.write_text("not an index\n")
        return Case(
            env.settings(db),
            IndexLocationError,
            rf"^the index folder {re.escape(str(db))} is a file, not a folder: pass --db",
            {},
            nullcontext(),
        )
    if situation == "locked by another ingest":
        # a first ingest that holds the writer lock and has published nothing yet
        s = env.settings(env.tmp / "building")
        return Case(
            s,
            IndexBusyError,
            rf"^the index in {re.escape(str(s.index_dir))} is being built by another "
            r"`rag ingest` \(lock .*\); try again when it finishes$",
            {},
            index_lock(s).acquire(timeout=5),
        )
    if situation.startswith("damaged: "):
        s = env.copy("damaged")
        DAMAGE[situation.removeprefix("damaged: ")](s)
        return Case(
            s,
            IndexDamagedError,
            r"^the index in .* is damaged \(.+\); rebuild it with `rag ingest --reset`",
            {},
            nullcontext(),
        )
    assert situation == "nothing indexed"
    s = env.settings(env.tmp / "never")
    return Case(
        s,
        IndexNotFoundError,
        rf"^nothing is indexed yet: run `rag ingest` first \(index folder "
        rf"{re.escape(str(s.index_dir))}\)$",
        {},
        nullcontext(),
    )


SITUATIONS = [
    "server unreachable",
    "db is a file",
    "locked by another ingest",
    *(f"damaged: {name}" for name in DAMAGE),
    "nothing indexed",
]

runner = CliRunner()


def cli(case: Case, *args: str) -> Any:
    db = [] if case.settings.chroma_server else ["--db", str(case.settings.index_dir)]
    result = runner.invoke(
        app,
        [*args, "--corpus", str(case.settings.corpus_dir), *db],
        env={"RAG_DATA_DIR": str(case.settings.data_dir), **case.env},
        catch_exceptions=True,
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.exception}")
    assert "Traceback" not in result.output
    return result


def one_error_line(result: Any) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), lines
    return lines[0].removeprefix("Error: ")


@pytest.mark.parametrize("situation", SITUATIONS)
def test_search_names_the_cause(env: Env, situation: str) -> None:
    case = make_case(env, situation)
    with case.holding:
        retriever = HybridRetriever(settings=case.settings, embedder=fake_embedder())
        with pytest.raises(case.error) as raised:
            retriever.search("Kathmandu Policy Forum")
        assert re.search(case.pattern, str(raised.value)), str(raised.value)
        assert "\n" not in str(raised.value)

        line = one_error_line(cli(case, "search", "Kathmandu Policy Forum"))
        assert re.search(case.pattern, line), line


@pytest.mark.parametrize("situation", [s for s in SITUATIONS if s != "nothing indexed"])
def test_status_names_the_cause(env: Env, situation: str) -> None:
    case = make_case(env, situation)
    with case.holding:
        with pytest.raises(case.error, match=case.pattern):
            index_status(case.settings)
        line = one_error_line(cli(case, "status"))
        assert re.search(case.pattern, line), line


def test_status_of_an_index_never_built_is_not_an_error(env: Env) -> None:
    case = make_case(env, "nothing indexed")
    assert index_status(case.settings).exists is False
    result = cli(case, "status")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"No index at {case.settings.index_dir}. Run `rag ingest`."


def test_the_five_situations_read_differently(env: Env) -> None:
    seen: dict[str, str] = {}
    for situation in [*SITUATIONS[:3], "damaged: chroma.sqlite3 zeroed", "nothing indexed"]:
        case = make_case(env, situation)
        with case.holding:
            line = one_error_line(cli(case, "search", "Kathmandu"))
        seen[situation] = re.sub(r"\S*[/:]\S*", "<where>", line)  # the wording, not the paths
    assert len(set(seen.values())) == 5, seen


@pytest.mark.parametrize("damage", DAMAGE)
def test_ingest_on_a_damaged_index_asks_for_reset_and_reset_rebuilds_it(
    env: Env, damage: str
) -> None:
    case = make_case(env, f"damaged: {damage}")
    if damage != "chroma.sqlite3 emptied":  # a plain ingest re-embeds what Chroma lost
        line = one_error_line(cli(case, "ingest"))
        assert re.search(case.pattern, line), line

    result = cli(case, "ingest", "--reset")
    assert result.exit_code == 0, result.output
    hits = HybridRetriever(settings=case.settings, embedder=fake_embedder()).search(
        "Kathmandu Policy Forum", k=1
    )
    good = HybridRetriever(settings=env.good, embedder=fake_embedder()).search(
        "Kathmandu Policy Forum", k=1
    )
    assert [(p.source, p.paragraph, p.text) for p in hits] == [
        (p.source, p.paragraph, p.text) for p in good
    ]


def test_a_second_ingest_while_one_holds_the_lock_is_busy(env: Env) -> None:
    case = make_case(env, "locked by another ingest")
    case.env["RAG_LOCK_TIMEOUT_S"] = "0"
    with case.holding:
        line = one_error_line(cli(case, "ingest"))
    assert line.startswith("the index is busy: another process has been writing it"), line
