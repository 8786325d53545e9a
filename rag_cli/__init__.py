"""The ``rag`` command (``rag_cli.app``) and the plumbing it shares with ``evals``
(``rag_cli.common``). A shell over the library, the UI and the API: the library never imports it.
"""
