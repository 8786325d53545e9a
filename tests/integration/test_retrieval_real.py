"""Retrieval with the real embedder and Chroma (issue: retrieval API)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rag.retrieval import HybridRetriever, relevance, retrieve
from rag.settings import Settings
from rag_cli.app import app
from tests.retrieval_contract import check_retrieval_contract

pytestmark = pytest.mark.integration


def test_contract_on_the_real_stack(real_settings: Settings) -> None:
    check_retrieval_contract(HybridRetriever(settings=real_settings))


def test_cli_json_ranks_the_exact_phrase_first(real_settings: Settings) -> None:
    result = CliRunner().invoke(
        app, ["search", "Kathmandu Policy Forum", "--json", "--db", str(real_settings.index_dir)]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["paragraph"] == 3 and "Kathmandu Policy Forum" in rows[0]["text"]
    assert set(rows[0]) >= {
        "source",
        "paragraph",
        "section",
        "text",
        "score",
        "dense_rank",
        "bm25_rank",
    }


def test_a_paragraph_asked_verbatim_is_its_own_nearest_neighbour(real_settings: Settings) -> None:
    """A search embeds its query on its own one-thread session; the vector must be the one
    the ingest stored for the same text, or dense ranks drift."""
    r = HybridRetriever(settings=real_settings)
    third = r.search("Kathmandu Policy Forum", k=1)[0]
    again = r.search(third.text, k=1)[0]
    assert (again.paragraph, again.dense_rank) == (third.paragraph, 1)
    assert again.similarity is not None and again.similarity > 0.99


def test_paraphrase_without_shared_keywords_is_found(real_settings: Settings) -> None:
    top = retrieve(
        "Which think tank in Nepal employs the Himalaya specialist?", k=3, settings=real_settings
    )
    assert 3 in [p.paragraph for p in top]


def test_relevance_separates_on_and_off_topic(real_settings: Settings) -> None:
    floor = real_settings.retrieval.min_relevance
    assert (
        relevance(
            retrieve("Why did Qatar seek partnerships in the Indo-Pacific?", settings=real_settings)
        )
        > floor
    )
    assert (
        relevance(retrieve("How long should I bake sourdough bread?", settings=real_settings))
        < floor
    )


def test_cli_bad_input_is_one_line(real_settings: Settings) -> None:
    runner = CliRunner()
    for args in (["search", "   "], ["search", "Qatar", "-k", "0"], ["search", "q" * 5000]):
        r = runner.invoke(app, [*args, "--db", str(real_settings.index_dir)])
        assert r.exit_code == 1
        assert r.stderr.startswith("Error:") and len(r.stderr.strip().splitlines()) == 1
