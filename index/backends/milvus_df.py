"""Document frequencies of a Milvus store: how many chunks hold each stemmed term.

Milvus' BM25 keeps its statistics inside the engine, out of reach of a client, and a
``TEXT_MATCH`` count scans every chunk on Milvus Lite (over a second per term at 3,000
chunks). So the writer keeps the counts itself, in a ``PREFIX_df`` collection: one row
per term and commit that changed it, ``(term, generation, df)``, written with the commit's
generation like every other row. The count of a term as of generation G is the ``df`` of
its row with the highest generation up to G: exact, one small indexed query. Rows a newer
commit superseded are deleted right after that commit; one left behind by a crash is
never read again (a newer row wins) and goes with the next commit that changes the term.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

BATCH = 500


def create_df(client, name: str) -> None:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=65535)
    schema.add_field("term", DataType.VARCHAR, max_length=65535)
    schema.add_field("generation", DataType.INT64)
    schema.add_field("df", DataType.INT64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)   # Milvus requires a vector field in every collection
    index = client.prepare_index_params()
    index.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    index.add_index(field_name="term", index_type="INVERTED")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def _literal(term: str) -> str:
    return '"' + term.replace("\\", "\\\\").replace('"', '\\"') + '"'


def chunk_terms(terms_field: str) -> set[str]:
    """The distinct terms of one chunk's stored ``terms`` field."""
    return set(terms_field.split())


class TermCounts:
    """Reads and writes the ``PREFIX_df`` collection of one store."""

    def __init__(self, client, name: str) -> None:
        self._client, self.name = client, name

    def lookup(self, terms: Iterable[str], generation: int) -> dict[str, int]:
        """``term -> chunks holding it`` as of ``generation`` (absent terms count 0)."""
        terms = sorted(set(terms))
        out = {t: 0 for t in terms}
        best: dict[str, int] = {}
        for b in range(0, len(terms), BATCH):
            expr = f"term in [{', '.join(_literal(t) for t in terms[b:b + BATCH])}] and generation <= {int(generation)}"
            for row in self._client.query(self.name, filter=expr, output_fields=["term", "generation", "df"]):
                if row["generation"] > best.get(row["term"], -1):
                    best[row["term"]] = row["generation"]
                    out[row["term"]] = int(row["df"])
        return out

    def stage(self, delta: Counter, committed: int, generation: int) -> list[str]:
        """Write the counts ``delta`` changes, as of ``generation`` (invisible until it commits)."""
        touched = sorted(t for t, n in delta.items() if n)
        current = self.lookup(touched, committed)
        rows = [{"key": f"{generation}:{t}", "term": t, "generation": generation, "df": max(0, current[t] + delta[t]),
                 "v": [1.0, 0.0]} for t in touched]
        for b in range(0, len(rows), BATCH):
            self._client.insert(self.name, rows[b:b + BATCH])
        return touched

    def prune(self, terms: list[str], generation: int) -> None:
        """Delete the rows of ``terms`` older than ``generation`` (superseded by its commit)."""
        for b in range(0, len(terms), BATCH):
            expr = f"term in [{', '.join(_literal(t) for t in terms[b:b + BATCH])}] and generation < {int(generation)}"
            self._client.delete(self.name, filter=expr)
