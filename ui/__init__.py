"""The Gradio web UI (``rag ui``): ``ui.app.build_app`` / ``ui.app.launch``. See docs/ui.md."""

from rag.extras import require_extra

require_extra("ui", "gradio")
