"""Checks that an optional extra (``[ui]``, ``[api]``, ``[evals]``, ``[openai]``) is installed.

The core library installs without them; code that needs one calls :func:`require_extra` before
importing it, so a missing extra is one line naming it instead of an import traceback.
"""

from __future__ import annotations

import importlib

from rag.errors import MissingExtraError


def require_extra(extra: str, *modules: str) -> None:
    """Raise :class:`MissingExtraError` naming ``extra`` unless every module imports.

    Example: ``require_extra("ui", "gradio")`` before ``import gradio``.
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            raise MissingExtraError(
                f"{module} is not installed: this needs the [{extra}] extra "
                f"(pip install 'groundedchat[{extra}]', or scripts/setup.sh for everything)"
            ) from exc
