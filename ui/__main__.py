"""python -m ui [options]: start the chat page.  python -m ui hash-password [USER]: a line for --auth-file."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from pathlib import Path

from ui.settings import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT
from ui.uploads import DEFAULT_MAX_UPLOAD_BYTES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ui", description="Start the chat page over your indexed documents.",
        epilog="'python -m ui hash-password USER' prints a line for --auth-file.",
    )
    parser.add_argument("--index", metavar="[NAME=]LOCATION", action="append", default=[],
                        help="the index to answer from, as the engine opens it (a folder; default: the index "
                             "over seeds/, built on first use). Repeat as --index NAME=LOCATION for several "
                             "named collections: the page lets users pick one")
    parser.add_argument("--collection", help="Milvus collection for Milvus locations (default: documents)")
    parser.add_argument("--milvus-token-file", help="file holding the Milvus token (else MILVUS_TOKEN)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to bind (default {DEFAULT_HOST}: this machine only; any other address "
                             "needs --auth-file or --insecure-no-auth)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--auth-file", type=Path, metavar="FILE",
                        help="user:hash lines (from 'python -m ui hash-password USER'): the page asks for a "
                             "user name and password")
    parser.add_argument("--insecure-no-auth", action="store_true",
                        help="serve a non-loopback --host without a password (anyone who can reach it can "
                             "read, add and remove documents)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR,
                        help="the app's folder for uploads and feedback.jsonl (default .data/ in the repository)")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_BYTES / 1e6,
                        help="largest file accepted for upload, in MB (default 20)")
    parser.add_argument("--reader", choices=["auto", "sentence", "neural"],
                        help="which reader extracts answers (default: the engine's, 'auto')")
    parser.add_argument("--concurrency", type=int, default=4, help="questions answered at once (default 4)")
    parser.add_argument("--watch", type=Path, metavar="FOLDER",
                        help="keep the (first) index in step with FOLDER while the page runs: new, changed, renamed "
                             "and deleted files are indexed or dropped within seconds")
    commands = parser.add_subparsers(dest="command", metavar="[hash-password [USER]]", required=False)
    hashing = commands.add_parser("hash-password", help="prompt for a password and print a user:hash line",
                                  description="Prompt for a password (twice) and print a line for --auth-file.")
    hashing.add_argument("user", nargs="?", help="the user name (prompted for when left out)")
    return parser


def hash_password_command(user: str | None) -> int:
    """Prompt for ``user``'s password and print ``user:pbkdf2_sha256$...`` to stdout."""
    from ui.auth import hash_password

    user = (user if user is not None else input("User name: ")).strip()
    if not user or ":" in user or any(c.isspace() for c in user):
        print("error: the user name must be non-empty, without ':' or spaces", file=sys.stderr)
        return 2
    password = getpass.getpass(f"Password for {user}: ")
    if not password:
        print("error: the password is empty; choose a password", file=sys.stderr)
        return 2
    if getpass.getpass("Again: ") != password:
        print("error: the two passwords differ; run the command again", file=sys.stderr)
        return 2
    print(f"{user}:{hash_password(password)}")
    return 0


def _log_to_stderr() -> None:
    """The page's own log on stderr, one line per event: refused input, failed uploads
    (with their traceback). Other libraries' logging is left as it is."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("ui")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "hash-password":
        return hash_password_command(args.user)

    from ui.auth import AuthFileError, load_auth_file
    from ui.settings import UISettings

    from ui.collections import CollectionError, check_collections, parse_index_option

    try:  # every check that needs no model first: a mistake is reported in a second
        locations = check_collections([parse_index_option(v) for v in args.index])
        settings = UISettings(data_dir=args.data, host=args.host, port=args.port,
                              max_upload_bytes=int(args.max_upload_mb * 1e6), concurrency_limit=args.concurrency,
                              auth_file=args.auth_file, insecure_no_auth=args.insecure_no_auth,
                              refresh_seconds=5.0 if args.watch else None)
        if args.watch and not args.watch.is_dir():
            raise ValueError(f"--watch {args.watch} is not a folder; pass the folder of documents to keep in step")
        if settings.auth_file:
            load_auth_file(settings.auth_file)
    except (ValueError, AuthFileError, CollectionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from index import IndexMismatch, IndexNotFound, IndexStoreError
    from qa import Engine, QASettings
    from ui.app import launch
    from ui.collections import Collections

    qa_settings = QASettings().with_overrides(reader=args.reader)

    def open_engine(location):
        from index import Index
        from index.backends import is_milvus

        if location is not None and is_milvus(str(location)):
            from index.backends.milvus import milvus_options_from

            location = Index.open(str(location), **milvus_options_from(args))
        return Engine(location, qa_settings)

    locations = locations or {"": None}
    first = next(iter(locations))
    try:  # the first collection opens now, so a wrong path stops the start; the others when picked
        engine = open_engine(locations[first])
        collections = Collections(locations, open_engine=open_engine,
                                  engines={first: engine})
    except (IndexNotFound, IndexMismatch, IndexStoreError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    _log_to_stderr()  # once the page will start: a refused start prints its one line and leaves logging as it was
    shown = f" in {first!r} ({len(locations)} collections)" if first else ""
    print(f"Loading the models and opening {len(engine.documents())} document(s){shown}...", flush=True)
    watcher = None
    if args.watch:
        from index.watch import FolderWatcher

        watcher = FolderWatcher(engine.index, args.watch, background=True)
        watcher.start()
        print(f"Watching {args.watch}: its changes are indexed within seconds.", flush=True)
    try:
        launch(collections, settings)
    finally:
        if watcher is not None:
            watcher.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
