"""The writer lease over a stand-in for its Milvus row: waiting, expiry, loss and the race of two takers."""

from __future__ import annotations

import threading
import time

import pytest

from index.backends.base import StoreBusy
from index.backends.milvus_lease import Lease


class Row:
    """One lease row, as a dict behind a lock (Milvus' single-row upsert is atomic too)."""

    def __init__(self, write_delay: float = 0.0) -> None:
        self.value: str | None = None
        self.write_delay = write_delay
        self._lock = threading.Lock()

    def read(self) -> str | None:
        with self._lock:
            return self.value

    def write(self, value: str) -> None:
        time.sleep(self.write_delay)
        with self._lock:
            self.value = value

    def delete(self) -> None:
        with self._lock:
            self.value = None

    def lease(self, **kw) -> Lease:
        return Lease(self.read, self.write, self.delete, **{"ttl": 1.0, "settle": 0.05, "wait": 5.0, **kw})


def test_a_second_writer_waits_until_the_first_releases():
    row = Row()
    first, second = row.lease(), row.lease()
    first.acquire()
    got = threading.Event()
    t = threading.Thread(target=lambda: (second.acquire(), got.set()))
    t.start()
    time.sleep(0.5)
    assert not got.is_set()                # held and renewed: the second writer keeps waiting
    first.check()
    first.release()
    t.join(5)
    assert got.is_set()
    second.check()
    second.release()
    assert row.value is None


def test_a_busy_store_gives_up_with_the_holder_named():
    row = Row()
    holder = row.lease()
    holder.acquire()
    try:
        with pytest.raises(StoreBusy, match=holder.owner):
            row.lease(wait=0.3).acquire()
    finally:
        holder.release()


def test_a_dead_writers_lease_expires():
    row = Row()
    dead = row.lease()
    dead.acquire()
    dead._stop.set()                       # the process died: nobody renews the row
    started = time.monotonic()
    heir = row.lease()
    heir.acquire()
    assert 0.5 < time.monotonic() - started < 3.0
    with pytest.raises(StoreBusy, match="lost"):
        dead.check()                       # the dead writer could never commit now
    heir.release()


def test_many_simultaneous_takers_get_the_lease_one_at_a_time():
    row = Row(write_delay=0.01)
    inside, overlaps, done = [0], [], []
    guard = threading.Lock()

    def work() -> None:
        lease = row.lease(wait=30.0)
        lease.acquire()
        with guard:
            inside[0] += 1
            overlaps.append(inside[0])
        time.sleep(0.05)
        with guard:
            inside[0] -= 1
        lease.check()
        lease.release()
        done.append(1)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(done) == 6 and max(overlaps) == 1
