"""Copy an index from one store to another (a folder to Milvus and back) without embedding again."""

from __future__ import annotations

from index.backends import FORMAT_VERSION, StoreMismatch, StoreNotFound, open_store
from index.types import IndexReport


def copy_index(source: str, destination: str, source_options: dict | None = None,
               destination_options: dict | None = None, batch_documents: int = 100) -> IndexReport:
    """Copy every document of ``source`` with its chunks and stored vectors into ``destination``.

    Documents already in ``destination`` with the same content hash are left alone, changed
    ones replaced; documents only in ``destination`` are kept. Each batch of documents is one
    commit, so a copy that is stopped can be run again and goes on where it stopped.

    Args:
        source: the index to copy (a folder or a ``milvus:`` address).
        destination: where to copy it; created when missing.
        source_options, destination_options: store options (``collection``, ``token`` for Milvus).
        batch_documents: documents per commit.

    Raises:
        StoreNotFound: nothing is indexed at ``source``.
        StoreMismatch: ``destination`` holds an index made with another embedding model.
    """
    if batch_documents <= 0:
        raise ValueError(f"batch_documents must be greater than 0. Currently, batch_documents is {batch_documents}")
    src = open_store(source, **(source_options or {}))
    manifest = src.manifest()
    if manifest is None:
        raise StoreNotFound(f"the index at {source} is empty; nothing to copy")
    dst = open_store(destination, create=True, **(destination_options or {}))
    there = dst.manifest()
    if there is not None and (there.get("model"), int(there["dimension"])) != (manifest.get("model"), int(manifest["dimension"])):
        raise StoreMismatch(f"{destination} holds an index made with {there.get('model')!r} ({there['dimension']} dimensions), "
                            f"{source} one made with {manifest.get('model')!r} ({manifest['dimension']}); "
                            f"copy into an empty location instead")
    wanted = {**manifest, "format_version": FORMAT_VERSION}
    copied: list[str] = []
    unchanged: list[str] = []
    chunks_added = chunks_removed = 0
    documents = src.documents()
    try:
        for start in range(0, len(documents), batch_documents):
            with dst.writer(wanted) as w:
                current = w.hashes()
                for info in documents[start:start + batch_documents]:
                    if current.get(info.source) == info.sha256:
                        unchanged.append(info.source)
                        continue
                    document = src.document(info.source)
                    chunks = src.chunks_of(info.source)
                    vectors = src.vectors([c.id for c in chunks])
                    if info.source in current:
                        chunks_removed += w.remove(info.source)
                    w.add(document, chunks, vectors)
                    copied.append(info.source)
                    chunks_added += len(chunks)
    finally:
        src.close()
        dst.close()
    return IndexReport(indexed=tuple(copied), unchanged=tuple(unchanged), chunks_added=chunks_added,
                       chunks_removed=chunks_removed)
