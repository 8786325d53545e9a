"""How many chunks MiniLM silently truncates: chunks budgeted in tiktoken (cl100k) tokens, as
before, vs in the embedder's own word pieces (``rag.chunking.TokenChunker``).

Corpus: every SQuAD-dev paragraph (35 articles, 1,204 paragraphs), and the 9 development
articles alone. A chunk is truncated when MiniLM's tokenizer gives it more word pieces
(``[CLS]``/``[SEP]`` included) than the model's ``max_seq_length``; the count comes from the
model folder's ``tokenizer.json`` through the ``tokenizers`` library. The "before" chunker is
the former one: LangChain's ``RecursiveCharacterTextSplitter.from_tiktoken_encoder`` with
256 cl100k tokens, 32 overlap, applied only to paragraphs over 256 cl100k tokens.

    python bench/chunk_truncation.py
"""

from __future__ import annotations

import json

from common import DEV_ARTICLES, clean, load_squad, table, write_json


def main() -> None:
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from tokenizers import Tokenizer

    from rag.chunking import SEPARATORS, TokenChunker
    from rag.embedding import resolve_model_path
    from rag.paragraphs import content_hash, paragraph_id
    from rag.settings import ChunkingSettings
    from rag.tokens import get_encoding
    from rag.types import Paragraph

    path = resolve_model_path("all-MiniLM-L6-v2")
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    limit = json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"]
    enc = get_encoding("cl100k_base")
    old = RecursiveCharacterTextSplitter.from_tiktoken_encoder(
        encoding_name="cl100k_base",
        chunk_size=256,
        chunk_overlap=32,
        separators=SEPARATORS,
        keep_separator="end",
    )
    new = TokenChunker(ChunkingSettings(), "all-MiniLM-L6-v2")

    def old_chunks(text: str) -> list[str]:
        if len(enc.encode(text, disallowed_special=())) <= 256:
            return [text]
        return [p for p in old.split_text(text) if p.strip()]

    rows, result = [], {}
    for name, titles in (
        ("all 35 SQuAD-dev articles", None),
        ("9 development articles", DEV_ARTICLES),
    ):
        texts = [
            clean(p["context"])
            for a in load_squad()
            if titles is None or a["title"] in titles
            for p in a["paragraphs"]
        ]
        paras = [
            Paragraph(
                paragraph_id("x", i, content_hash(t)), "x", i, "", t, 0, len(t), content_hash(t)
            )
            for i, t in enumerate(texts, 1)
        ]
        before = [c for t in texts for c in old_chunks(t)]
        after = [c.text for c in new.chunk(paras)]
        over_b = [len(tok.encode(c).ids) for c in before if len(tok.encode(c).ids) > limit]
        over_a = [len(tok.encode(c).ids) for c in after if len(tok.encode(c).ids) > limit]
        longest = max(len(tok.encode(t).ids) for t in texts)
        result[name] = {
            "paragraphs": len(texts),
            "chunks_before": len(before),
            "truncated_before": len(over_b),
            "chunks_after": len(after),
            "truncated_after": len(over_a),
            "longest_paragraph_word_pieces": longest,
            "longest_truncated_chunk_before": max(over_b, default=0),
        }
        rows.append(
            (
                name,
                len(texts),
                len(before),
                len(over_b),
                max(over_b, default=0),
                len(after),
                len(over_a),
                longest,
            )
        )
    print(
        table(
            rows,
            [
                "corpus",
                "paragraphs",
                "chunks before",
                "truncated before",
                "longest truncated (word pieces)",
                "chunks after",
                "truncated after",
                "longest paragraph (word pieces)",
            ],
        )
    )
    print(f"MiniLM max_seq_length: {limit} word pieces")
    print("wrote", write_json("chunk_truncation", {"limit": limit, **result}))


if __name__ == "__main__":
    main()
