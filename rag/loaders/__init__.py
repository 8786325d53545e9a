"""Format-specific readers (HTML, PDF, Word) that turn a file's bytes into heading and
paragraph blocks; ``rag.loading`` picks one by file suffix."""
