"""``python -m rag_cli``: the ``rag`` command."""

from rag_cli.app import app

app()
