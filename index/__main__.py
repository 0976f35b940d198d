"""python -m index build FOLDER | add FILE... | remove FILE... | status   [--index DIR]"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from index.store import DEFAULT_INDEX_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m index", description="Build and change a document index.")
    parser.add_argument("--index", default=str(DEFAULT_INDEX_DIR), help=f"index folder (default: {DEFAULT_INDEX_DIR})")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars or per-file lines")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="index a folder: embed new and changed files, drop removed ones")
    build.add_argument("folder")
    build.add_argument("--rebuild", action="store_true", help="start from an empty index (after a model change)")
    build.add_argument("--chunk-size", type=int, default=800, help="characters per chunk (default 800)")
    build.add_argument("--chunk-overlap", type=int, default=100, help="characters shared by neighbouring chunks (default 100)")
    sub.add_parser("add", help="index single files").add_argument("files", nargs="+")
    sub.add_parser("remove", help="drop files from the index").add_argument("files", nargs="+")
    sub.add_parser("status", help="what the index holds")
    args = parser.parse_args(argv)

    import shutil

    from index import Index, IndexMismatch, IndexNotFound, IndexSettings

    settings = IndexSettings(
        chunk_size=getattr(args, "chunk_size", 800), chunk_overlap=getattr(args, "chunk_overlap", 100),
        show_progress=not args.quiet,
    )
    try:
        if args.command == "build" and args.rebuild and (Path(args.index) / "CURRENT").exists():
            shutil.rmtree(args.index)
        index = Index.open(args.index, settings, create=args.command in ("build", "add"))
        if args.command == "status":
            status = index.status()
            if args.json:
                print(json.dumps(status, indent=2))
            else:
                print(f"{status['path']}: {status['documents']} documents, {status['chunks']} chunks ({status['generation']})")
                for d in index.documents():
                    print(f"  {d.chunks:5d} chunks  {d.source}")
            return 0
        if args.command == "build":
            report = index.build(args.folder, quiet=args.quiet)
        elif args.command == "add":
            report = index.add(args.files, quiet=args.quiet)
        else:
            report = index.remove(args.files)
    except (IndexNotFound, IndexMismatch, NotADirectoryError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    if not args.quiet:
        for source in report.indexed:
            print(f"indexed   {source}")
        for source in report.removed:
            print(f"removed   {source}")
    for source, reason in report.skipped:
        print(f"skipped   {source}: {reason}", file=sys.stderr)
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
