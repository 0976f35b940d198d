"""Split a Document into Chunks whose spans point into the document's text."""

from __future__ import annotations

from index.types import Chunk, Document

# The chunking every index uses unless told otherwise (``IndexSettings``, the CLI).
DEFAULT_CHUNK_SIZE = 800       # characters: a few sentences, about one paragraph
DEFAULT_CHUNK_OVERLAP = 100    # characters shared by neighbouring chunks


def chunk_document(document: Document, chunk_size: int = DEFAULT_CHUNK_SIZE,
                   chunk_overlap: int = DEFAULT_CHUNK_OVERLAP) -> list[Chunk]:
    """Split ``document`` with LangChain's RecursiveCharacterTextSplitter, keeping offsets.

    Args:
        document: the document to split.
        chunk_size: most characters in a chunk.
        chunk_overlap: characters shared by neighbouring chunks.

    Returns:
        Chunks in document order with ``id=0`` (the catalog assigns ids);
        ``document.text[c.start:c.end] == c.text`` for each.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be greater than 0. Currently, chunk_size is {chunk_size}")
    if not 0 <= chunk_overlap < chunk_size:
        raise ValueError(f"chunk_overlap must be in [0, chunk_size). Currently, chunk_overlap is {chunk_overlap}")
    from langchain_text_splitters import RecursiveCharacterTextSplitter  # only building needs it, not answering

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        add_start_index=True,
        separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
        keep_separator="end",
    )
    chunks: list[Chunk] = []
    text = document.text
    for piece in splitter.create_documents([text]):
        body = piece.page_content
        start = piece.metadata["start_index"]
        if start < 0 or text[start : start + len(body)] != body:
            # add_start_index searches forward from the previous chunk; fall back to our own search.
            start = text.find(body, chunks[-1].start if chunks else 0)
            if start < 0:
                raise AssertionError(f"chunk not found verbatim in {document.source}")
        end = start + len(body)
        chunks.append(Chunk(id=0, source=document.source, start=start, end=end, text=body, page=document.page_at(start)))
    return chunks
