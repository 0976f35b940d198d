"""Copy an index from one store to another (a folder to Milvus and back) without embedding again.

Every document of the source is read with its chunks and their stored vectors and added
to the destination, a batch of documents per commit, so a large copy neither holds one
huge change in memory nor loses the batches already committed when it stops halfway;
running it again skips what arrived unchanged (same source, same sha256).

Example:
    >>> copy_index(".index/default", "milvus:.index/docs.db").summary()      # doctest: +SKIP
    '1 indexed, 0 skipped, 0 unchanged, 0 removed (4 chunks added, 0 removed)'
"""

from __future__ import annotations

from index import embedder_record
from index.backends import StoreMismatch, StoreNotFound, is_milvus, open_store
from index.types import IndexReport


def copy_index(src_location: str, dst_location: str, batch_documents: int = 64, src_options: dict | None = None,
               dst_options: dict | None = None, **options) -> IndexReport:
    """Copy every document of ``src_location`` into ``dst_location`` (created when missing).

    Args:
        src_location: the index to read (a folder or a ``milvus:`` address).
        dst_location: the index to write; its other documents are kept.
        batch_documents: documents per commit to the destination.
        src_options, dst_options: backend options for one side (``collection``, ``token``).
        **options: backend options for every Milvus side.

    Raises:
        StoreNotFound: no index at ``src_location``.
        StoreMismatch: the two indexes were built with different embedding models or dimensions,
            or with embedders of different families (fp32 / int8, ``index.embedder_record``).
    """
    if batch_documents <= 0:
        raise ValueError(f"batch_documents must be greater than 0. Currently, batch_documents is {batch_documents}")
    src_opts = {**(options if is_milvus(src_location) else {}), **(src_options or {})}
    dst_opts = {**(options if is_milvus(dst_location) else {}), **(dst_options or {})}
    if str(src_location) == str(dst_location) and src_opts == dst_opts:
        raise ValueError(f"source and destination are the same index ({src_location}); name another destination")
    src = open_store(str(src_location), **src_opts)
    try:
        manifest = src.manifest()
        if manifest is None:
            raise StoreNotFound(f"The index at {src_location} is empty; build it first: python -m index build FOLDER --index {src_location}")
        dst = open_store(str(dst_location), create=True, **dst_opts)
        try:
            return _copy(src, dst, manifest, batch_documents)
        finally:
            dst.close()
    finally:
        src.close()


def _copy(src, dst, manifest: dict, batch_documents: int) -> IndexReport:
    stored = dst.manifest()
    if stored is not None:
        for key in ("model", "dimension"):
            if stored.get(key) != manifest.get(key):
                raise StoreMismatch(
                    f"Cannot copy: {src.location} was built with {key} {manifest.get(key)!r} and {dst.location} with "
                    f"{stored.get(key)!r}. Copy into a new index, or rebuild {dst.location} with the same model.")
        if embedder_record.stored_family(stored) != embedder_record.stored_family(manifest):
            raise StoreMismatch(
                f"Cannot copy: {src.location} holds vectors from the embedder {embedder_record.describe(manifest)} "
                f"and {dst.location} from {embedder_record.describe(stored)}; one index's vectors must come from "
                f"one family. Copy into a new index.")
        kept = embedder_record.recorded(stored)
        if kept:
            manifest = {**manifest, embedder_record.KEY: kept}  # the same family: the destination keeps its record
    documents = src.documents()
    indexed: list[str] = []
    unchanged: list[str] = []
    added = removed = 0
    for b in range(0, len(documents), batch_documents):
        batch = documents[b:b + batch_documents]
        with dst.writer(manifest) as w:
            hashes = w.hashes()
            for info in batch:
                if hashes.get(info.source) == info.sha256:
                    unchanged.append(info.source)
                    continue
                document = src.document(info.source)
                if document is None:   # removed from the source since the listing
                    continue
                chunks = src.chunks_of(info.source)
                vectors = src.vectors([c.id for c in chunks])
                if info.source in hashes:
                    removed += w.remove(info.source)
                w.add(document, chunks, vectors)
                indexed.append(info.source)
                added += len(chunks)
    return IndexReport(indexed=tuple(indexed), unchanged=tuple(unchanged), chunks_added=added, chunks_removed=removed)
