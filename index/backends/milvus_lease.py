"""One writer at a time on a Milvus store: a lease row, since Milvus has no lock API.

A lease is a row ``{owner, expires}`` in the store's meta collection. A writer takes it
when the row is absent, expired or its own, and keeps it alive from a background thread.
Milvus has no compare-and-swap, so taking it follows Fischer's timed mutual exclusion:

1. read the row; wait while another owner holds an unexpired lease;
2. write our own row, and note how long read-then-write took;
3. wait ``settle`` seconds, then read again: the lease is ours only if the row still
   names us and step 2 took less than ``settle``.

The guarantee, stated plainly: two writers never both hold the lease as long as every
lease write becomes visible within ``settle`` seconds of the read before it (a stalled
client whose write lands later than that can break it) and the clocks of the writing
machines agree to well within ``ttl`` (expiry compares wall-clock times). Every write
is re-checked at commit: a writer that finds the row names someone else commits nothing.
With Milvus Lite only one process can open the data folder at all, so ``settle`` is 0
there and a process-local lock orders the threads.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from typing import Callable

from index.backends.base import StoreBusy

LEASE_KEY = "lease"


class Lease:
    """The writer lease of one store.

    Args:
        read: returns the lease row's JSON value, or None when there is none.
        write: writes the lease row's JSON value.
        delete: deletes the lease row.
        ttl: seconds a lease lives without renewal (renewed every ``ttl / 3``).
        settle: seconds to wait before trusting a written lease (see the module docstring).
        wait: seconds to wait for another writer before giving up with ``StoreBusy``.
    """

    def __init__(self, read: Callable[[], str | None], write: Callable[[str], None], delete: Callable[[], None],
                 ttl: float = 30.0, settle: float = 2.0, wait: float = 120.0) -> None:
        if ttl <= 3 * settle:
            raise ValueError(f"ttl must exceed 3 * settle. Currently, ttl is {ttl} and settle is {settle}")
        self._read, self._write, self._delete = read, write, delete
        self.ttl, self.settle, self.wait = ttl, settle, wait
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._lost = False
        self._thread: threading.Thread | None = None

    def _current(self) -> dict | None:
        raw = self._read()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None  # a damaged row protects nothing; it is overwritten

    def _value(self) -> str:
        return json.dumps({"owner": self.owner, "expires": time.time() + self.ttl})

    def acquire(self) -> None:
        """Take the lease, waiting up to ``wait`` seconds; raises ``StoreBusy`` when another writer keeps it."""
        deadline = time.monotonic() + self.wait
        holder = None
        while True:
            current = self._current()
            if current is None or current.get("owner") == self.owner or current.get("expires", 0) < time.time():
                started = time.monotonic()
                self._write(self._value())
                took = time.monotonic() - started
                if self.settle:
                    time.sleep(self.settle)
                current = self._current()
                if current is not None and current.get("owner") == self.owner and (not self.settle or took < self.settle):
                    break
            else:
                holder = current.get("owner")
            if time.monotonic() > deadline:
                raise StoreBusy(f"Another writer ({holder or 'unknown'}) holds this Milvus store and did not finish "
                                f"within {self.wait:.0f} s; try again when it is done (a crashed writer's lease "
                                f"expires {self.ttl:.0f} s after its last renewal)")
            time.sleep(min(0.5 + self.settle, 5.0))
        self._lost = False
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew, name="milvus-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            current = self._current()
            if current is None or current.get("owner") != self.owner:
                self._lost = True
                return
            self._write(self._value())

    def check(self) -> None:
        """Raise ``StoreBusy`` unless the lease is still ours (called right before a commit)."""
        current = self._current()
        if self._lost or current is None or current.get("owner") != self.owner or current.get("expires", 0) < time.time():
            raise StoreBusy("This writer lost the Milvus store's lease (it stalled longer than the lease lives, or "
                            "another writer took it); nothing was committed. Run the change again.")

    def release(self) -> None:
        """Stop renewing and drop the row if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        current = self._current()
        if current is not None and current.get("owner") == self.owner:
            self._delete()
