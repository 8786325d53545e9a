"""The evaluation suite (``evals`` command): question files, scoring, metrics, gates and reports."""
