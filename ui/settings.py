"""How the page runs: folders, limits, address, and who may open it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from ui.uploads import DEFAULT_MAX_UPLOAD_BYTES

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / ".data"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
SEED_EXAMPLES = (
    "who is Rob Strayer?",
    "Who is the National Security Council spokesman?",
    "Which Chinese telecom company did the DOJ charge in January?",
    "What is the capital of France?",
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def exposure_error(host: str, has_auth: bool, insecure_no_auth: bool) -> str | None:
    """The one-line refusal for serving ``host`` to the network with no password, or None when allowed."""
    if is_loopback(host) or has_auth or insecure_no_auth:
        return None
    return (f"--host {host} exposes the page to the network and it has no password: add --auth-file FILE "
            "(lines user:hash, made by 'python -m ui hash-password USER'), or pass --insecure-no-auth "
            "to serve it without one")


@dataclass(frozen=True)
class UISettings:
    """How the page runs.

    Args:
        data_dir: the app's own folder (default ``.data/`` in the repository, git-ignored).
        uploads_dir: where uploaded files are kept (default ``data_dir/uploads``).
        feedback_path: the JSONL file ratings go to (default ``data_dir/feedback.jsonl``).
        max_upload_bytes: larger uploads are refused (default 20 MB per file).
        concurrency_limit: questions answered at once (default 4); uploads and removals run
            one at a time beside them and never take a question's place.
        host: the address to bind (default 127.0.0.1: this machine only).
        port: the port to listen on (default 7860).
        auth_file: ``user:hash`` lines (``python -m ui hash-password USER``); when given,
            the page and its API ask for a user name and password.
        insecure_no_auth: allow a non-loopback ``host`` without ``auth_file``.
        examples: example questions shown under the chat.
        refresh_seconds: re-read the document list this often (a watched folder changes it
            behind the page); None: only when the page loads and after its own changes.

    Raises:
        ValueError: a limit or port out of range, or a non-loopback host with neither
            ``auth_file`` nor ``insecure_no_auth``.

    Example:
        >>> UISettings(port=8080).uploads_dir.name
        'uploads'
    """

    data_dir: Path = DEFAULT_DATA_DIR
    uploads_dir: Path | None = None
    feedback_path: Path | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    concurrency_limit: int = 4
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    auth_file: Path | None = None
    insecure_no_auth: bool = False
    examples: tuple[str, ...] = field(default=SEED_EXAMPLES)
    refresh_seconds: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.uploads_dir is None:
            object.__setattr__(self, "uploads_dir", self.data_dir / "uploads")
        if self.feedback_path is None:
            object.__setattr__(self, "feedback_path", self.data_dir / "feedback.jsonl")
        object.__setattr__(self, "uploads_dir", Path(self.uploads_dir))
        object.__setattr__(self, "feedback_path", Path(self.feedback_path))
        if self.auth_file is not None:
            object.__setattr__(self, "auth_file", Path(self.auth_file))
        if self.max_upload_bytes <= 0:
            raise ValueError(f"max_upload_bytes must be greater than 0. Currently, it is {self.max_upload_bytes}")
        if self.concurrency_limit < 1:
            raise ValueError(f"concurrency_limit must be at least 1. Currently, it is {self.concurrency_limit}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1-65535. Currently, port is {self.port}")
        refusal = exposure_error(self.host, self.auth_file is not None, self.insecure_no_auth)
        if refusal:
            raise ValueError(refusal)
