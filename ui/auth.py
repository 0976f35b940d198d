"""Passwords for the page: PBKDF2-SHA256 hashes in a ``user:hash`` file.

A line of the file::

    alice:pbkdf2_sha256$600000$Zb3kq0M6f0bxWg4v$kx0...   (iterations, salt, hash in base64)

``python -m ui hash-password alice`` prompts for the password and prints such a line.

Example:
    >>> line = "alice:" + hash_password("correct horse", iterations=1000)
    >>> check = PasswordCheck(parse_auth_lines([line]))
    >>> check.verify("alice", "correct horse"), check.verify("alice", "wrong")
    (True, False)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Iterable

SCHEME = "pbkdf2_sha256"
DEFAULT_ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
LINE_FORMAT = f"user:{SCHEME}$ITERATIONS$SALT$HASH"


class AuthFileError(ValueError):
    """An auth file that cannot be used; the message names the line and the fix (never its content)."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def hash_password(password: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$ITERATIONS$SALT$HASH`` for ``password`` (a new random salt unless given)."""
    if not password:
        raise ValueError("password is empty; choose a password")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1. Currently, iterations is {iterations}")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8", "surrogatepass"), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def _parse_hash(encoded: str) -> tuple[int, bytes, bytes]:
    scheme, iterations, salt, digest = encoded.split("$")
    if scheme != SCHEME or not iterations.isdigit() or int(iterations) < 1:
        raise ValueError(encoded)
    return int(iterations), _unb64(salt), _unb64(digest)


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded`` (from ``hash_password``), compared in constant time."""
    iterations, salt, digest = _parse_hash(encoded)
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8", "surrogatepass"), salt, iterations)
    return hmac.compare_digest(candidate, digest)


def parse_auth_lines(lines: Iterable[str], origin: str = "auth file") -> dict[str, str]:
    """``user -> hash`` from ``user:hash`` lines; blank lines and ``#`` comments are skipped.

    Raises:
        AuthFileError: a malformed line, a repeated user, or no user at all.
    """
    users: dict[str, str] = {}
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, encoded = line.partition(":")
        user = user.strip()
        try:
            if not sep or not user:
                raise ValueError(n)
            _parse_hash(encoded.strip())
        except ValueError:
            raise AuthFileError(f"{origin}, line {n}: expected {LINE_FORMAT}; make one with "
                                "'python -m ui hash-password USER'") from None
        if user in users:
            raise AuthFileError(f"{origin}, line {n}: user {user!r} appears twice; keep one line per user")
        users[user] = encoded.strip()
    if not users:
        raise AuthFileError(f"{origin} has no users; add lines made by 'python -m ui hash-password USER'")
    return users


def load_auth_file(path: str | Path) -> dict[str, str]:
    """``user -> hash`` read from ``path`` (see ``parse_auth_lines``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AuthFileError(f"cannot read the auth file {p.name} ({getattr(e, 'strerror', None) or e})") from None
    return parse_auth_lines(text.splitlines(), origin=f"auth file {p.name}")


class PasswordCheck:
    """Checks a user name and password against ``user -> hash``.

    An unknown user costs the same work as a known one, so timing does not tell which
    names exist. ``as_gradio_auth()`` is the callable Gradio's ``launch(auth=...)`` takes.
    """

    def __init__(self, users: dict[str, str]) -> None:
        if not users:
            raise ValueError("users is empty; give at least one user -> hash")
        self.users = dict(users)
        iterations = max(_parse_hash(h)[0] for h in self.users.values())
        self._decoy = hash_password(secrets.token_urlsafe(16), iterations=iterations)

    def verify(self, username: str, password: str) -> bool:
        encoded = self.users.get(username)
        matched = verify_password(password, encoded or self._decoy)
        return matched and encoded is not None

    def as_gradio_auth(self):
        """An async ``(username, password) -> bool``: the hashing runs off the server's event loop."""

        async def check(username: str, password: str) -> bool:
            return await asyncio.to_thread(self.verify, username, password)

        return check
