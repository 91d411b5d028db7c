"""From a parsed DoclingDocument to citable passages.

First the document becomes an *outline*: its text (what a reader sees, blocks separated by a
blank line; tables as Markdown) and, for each block, its heading path, page and character
range in that text. Every strategy then cuts passages whose provenance comes from the
outline, so any passage can be cited by section, page and offsets whatever the strategy.

Strategies (per collection, see Collection.chunking), all from libraries:
- `structure` (default): docling's HybridChunker with the embedding model's own tokenizer:
  passages follow the document's sections, tables stay whole where they fit, and undersized
  neighbours under the same headings are merged.
- `tokens`: chonkie's TokenChunker, fixed windows of tokens with overlap, within each section.
- `recursive`: chonkie's RecursiveChunker (paragraphs, then sentences, then words), per section.
- `semantic`: chonkie's SemanticChunker, cutting where the similarity of neighbouring
  sentences (embedded with our own model) drops, per section.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from docling_core.types.doc import (
    DoclingDocument,
    ListItem,
    PictureItem,
    SectionHeaderItem,
    TableItem,
    TextItem,
    TitleItem,
)

from documents.embedding import Embedder


@dataclass(frozen=True)
class Block:
    ref: str
    text: str
    heading_path: tuple[str, ...]
    page: int | None
    start: int
    end: int
    is_heading: bool


@dataclass(frozen=True)
class Outline:
    text: str
    blocks: list[Block]

    @property
    def page_count(self) -> int | None:
        pages = [block.page for block in self.blocks if block.page is not None]
        return max(pages) if pages else None


@dataclass(frozen=True)
class ChunkDraft:
    text: str
    token_count: int
    heading_path: tuple[str, ...]
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int


def outline_build(document: DoclingDocument) -> Outline:
    """The reading text of a document and the provenance of each of its blocks."""
    headings: dict[int, str] = {}
    blocks: list[Block] = []
    parts: list[str] = []
    position = 0
    for item, _level in document.iterate_items(with_groups=False):
        is_heading = isinstance(item, TitleItem | SectionHeaderItem)
        if isinstance(item, TableItem):
            text = item.export_to_markdown(document)
        elif isinstance(item, ListItem):
            text = f"{item.marker or '-'} {item.text}".strip()
        elif isinstance(item, TextItem):
            text = item.text
        elif isinstance(item, PictureItem):
            text = item.caption_text(document)
        else:
            continue
        text = text.strip()
        if not text:
            continue
        if is_heading:
            level = 0 if isinstance(item, TitleItem) else item.level
            headings = {lvl: title for lvl, title in headings.items() if lvl < level}
            headings[level] = text
        path = tuple(headings[lvl] for lvl in sorted(headings))
        if parts:
            position += 2
        page = item.prov[0].page_no if item.prov else None
        blocks.append(
            Block(item.self_ref, text, path, page, position, position + len(text), is_heading)
        )
        parts.append(text)
        position += len(text)
    return Outline("\n\n".join(parts), blocks)


@functools.cache
def tokenizer():
    """The tokenizer that counts chunk tokens: the embedding model's own, from disk."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(settings.TOKENIZER_PATH), local_files_only=True)


@functools.lru_cache(maxsize=8192)
def token_count(text: str) -> int:
    """Tokens in `text`, remembered: HybridChunker counts most texts several times (a
    SciFact abstract: 13 counts of 4.5 distinct texts)."""
    return len(tokenizer().encode(text, add_special_tokens=False))


def chunks_split(
    *,
    document: DoclingDocument,
    outline: Outline,
    strategy: str,
    max_tokens: int,
    overlap: int,
    embedder: Embedder,
) -> list[ChunkDraft]:
    if strategy == "structure":
        return _structure_chunks(document, outline, max_tokens)
    if strategy == "tokens":
        cut = functools.partial(_token_windows, max_tokens=max_tokens, overlap=overlap)
    else:
        chunker = _text_chunker(strategy, max_tokens, embedder)

        def cut(section: str) -> list[tuple[int, int]]:
            return [(piece.start_index, piece.end_index) for piece in chunker.chunk(section)]

    drafts = []
    for start, end, blocks in _sections(outline):
        for piece_start, piece_end in cut(outline.text[start:end]):
            text = outline.text[start + piece_start : start + piece_end]
            if text.strip():
                drafts.append(
                    _draft(
                        text, blocks[0].heading_path, blocks, start + piece_start, start + piece_end
                    )
                )
    return drafts


def _token_windows(text: str, *, max_tokens: int, overlap: int) -> list[tuple[int, int]]:
    """Windows of `max_tokens` tokens, each starting `max_tokens - overlap` tokens after the
    previous, as character ranges of the original text (from the tokenizer's offset mapping,
    so the passage is the text itself, not a lower-cased decoding of its tokens)."""
    offsets = tokenizer()(text, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    step = max(1, max_tokens - overlap)
    windows = []
    for first in range(0, len(offsets), step):
        last = min(first + max_tokens, len(offsets)) - 1
        windows.append((offsets[first][0], offsets[last][1]))
        if last == len(offsets) - 1:
            break
    return windows


def _sections(outline: Outline) -> list[tuple[int, int, list[Block]]]:
    """Runs of consecutive body blocks under the same headings: (start, end, blocks)."""
    sections: list[tuple[int, int, list[Block]]] = []
    for block in outline.blocks:
        if block.is_heading:
            continue
        if sections and sections[-1][2][-1].heading_path == block.heading_path:
            start, _, blocks = sections[-1]
            sections[-1] = (start, block.end, [*blocks, block])
        else:
            sections.append((block.start, block.end, [block]))
    return sections


def _draft(
    text: str, heading_path: tuple[str, ...], blocks: Sequence[Block], start: int, end: int
) -> ChunkDraft:
    pages = [
        block.page
        for block in blocks
        if block.page is not None and block.start < end and block.end > start
    ]
    return ChunkDraft(
        text=text.strip(),
        token_count=token_count(text),
        heading_path=heading_path,
        page_start=min(pages) if pages else None,
        page_end=max(pages) if pages else None,
        char_start=start,
        char_end=end,
    )


@functools.cache
def _hybrid_chunker(max_tokens: int):
    from docling_core.transforms.chunker.hybrid_chunker import HybridChunker
    from docling_core.transforms.chunker.tokenizer.huggingface import HuggingFaceTokenizer

    class CountingTokenizer(HuggingFaceTokenizer):
        """HybridChunker hands `get_tokenizer()` to semchunk for every passage it must split.
        Given a tokenizer, semchunk scans its whole vocabulary each time (for the longest
        token: 30k entries, ~10 ms, half of all chunking time); given a counting function,
        it splits the same way without the scan."""

        def get_tokenizer(self):
            return token_count

        def count_tokens(self, text: str) -> int:
            return token_count(text)

    return HybridChunker(
        tokenizer=CountingTokenizer(tokenizer=tokenizer(), max_tokens=max_tokens),
        merge_peers=True,
    )


def _structure_chunks(document: DoclingDocument, outline: Outline, max_tokens: int):
    chunker = _hybrid_chunker(max_tokens)
    by_ref = {block.ref: block for block in outline.blocks}
    drafts = []
    for chunk in chunker.chunk(dl_doc=document):
        if not chunk.text.strip():
            continue
        blocks = [by_ref[item.self_ref] for item in chunk.meta.doc_items if item.self_ref in by_ref]
        if blocks:
            start = min(block.start for block in blocks)
            end = max(block.end for block in blocks)
            # A long block split in several passages: narrow to where this passage's text is.
            found = outline.text.find(chunk.text.strip(), start, end)
            if found >= 0:
                start, end = found, found + len(chunk.text.strip())
        else:
            start = end = 0
        drafts.append(_draft(chunk.text, tuple(chunk.meta.headings or ()), blocks, start, end))
    return drafts


def _text_chunker(strategy: str, max_tokens: int, embedder: Embedder):
    from chonkie import RecursiveChunker, SemanticChunker

    if strategy == "recursive":
        return RecursiveChunker(tokenizer=tokenizer(), chunk_size=max_tokens)
    if strategy == "semantic":
        return SemanticChunker(embedding_model=_chonkie_embeddings(embedder), chunk_size=max_tokens)
    raise ValueError(f"unknown chunking strategy {strategy!r}")


def _chonkie_embeddings(embedder: Embedder):
    """Our embedder as chonkie's embeddings interface, so semantic cuts use our model."""
    from chonkie.embeddings import BaseEmbeddings

    class Embeddings(BaseEmbeddings):
        def embed(self, text: str) -> np.ndarray:
            return embedder.embed([text])[0]

        def embed_batch(self, texts: list[str]) -> list[np.ndarray]:
            return list(embedder.embed(texts))

        @property
        def dimension(self) -> int:
            return embedder.dimensions

        def get_tokenizer(self):
            return tokenizer()

    return Embeddings()
