"""python -m ui [--index DIR] [--host H] [--port P] [--data DIR]: start the chat page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from ui.app import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT
    from ui.uploads import DEFAULT_MAX_UPLOAD_BYTES

    parser = argparse.ArgumentParser(prog="python -m ui", description="Start the chat page over your indexed documents.")
    parser.add_argument("--index", help="index folder (default: the index over seeds/, built on first use)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR,
                        help="the app's folder for uploads and feedback.jsonl (default .data/ in the repository)")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_BYTES / 1e6,
                        help="largest file accepted for upload, in MB (default 20)")
    parser.add_argument("--reader", choices=["auto", "sentence", "neural"],
                        help="which reader extracts answers (default: the engine's, 'auto')")
    parser.add_argument("--concurrency", type=int, default=4, help="questions answered at once (default 4)")
    args = parser.parse_args(argv)

    from index import IndexMismatch, IndexNotFound
    from qa import Engine, QASettings
    from ui.app import UISettings, launch

    try:
        settings = UISettings(data_dir=args.data, host=args.host, port=args.port,
                              max_upload_bytes=int(args.max_upload_mb * 1e6), concurrency_limit=args.concurrency)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        engine = Engine(args.index, QASettings().with_overrides(reader=args.reader))
    except (IndexNotFound, IndexMismatch) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"Loading the models and opening {len(engine.documents())} document(s)...", flush=True)
    launch(engine, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
