"""python -m index build FOLDER | add FILE... | remove FILE... | status | check | copy SRC DST   [--index DIR]

The common options (``--index``, ``--quiet``, ``--json``, the Milvus options) work before
and after the subcommand. Every error is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from index.chunking import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE
from index.embedding import BACKENDS as EMBEDDER_BACKENDS
from index.store import DEFAULT_INDEX_DIR, IndexSettings

COMMON_DEFAULTS = {"index": str(DEFAULT_INDEX_DIR), "quiet": False, "json": False, "collection": "documents",
                   "milvus_token_file": None}


def common_options(suppress: bool) -> argparse.ArgumentParser:
    """The options every subcommand takes; on subparsers their defaults are suppressed so
    that a value given before the subcommand is not overwritten by the default after it."""
    default = (lambda name: argparse.SUPPRESS) if suppress else COMMON_DEFAULTS.get
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--index", default=default("index"),
                   help=f"index folder or Milvus address such as milvus:FILE.db (default: {DEFAULT_INDEX_DIR})")
    p.add_argument("--quiet", "-q", action="store_true", default=default("quiet"), help="no progress bars or per-file lines")
    p.add_argument("--json", action="store_true", default=default("json"), help="print the result as JSON")
    p.add_argument("--collection", default=default("collection"), help="Milvus collection (default: documents)")
    p.add_argument("--milvus-token-file", default=default("milvus_token_file"),
                   help="file holding the Milvus token (user:password or an API key)")
    return p


def embedder_option() -> argparse.ArgumentParser:
    """``--embedder``, for the subcommands that embed documents."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--embedder", choices=EMBEDDER_BACKENDS, default="auto",
                   help="how the embedding model runs: onnx-int8 is about twice as fast as fp32 (onnx, torch), "
                        "with vectors slightly different. A new index records its choice and is then always "
                        "queried and extended with it; default auto: the index's own, for a new index onnx-int8 "
                        "(torch without onnxruntime). Another family than the index's is refused: "
                        "change it with --rebuild")
    return p


def parser() -> argparse.ArgumentParser:
    sub_common = common_options(suppress=True)
    embedding = embedder_option()
    top = argparse.ArgumentParser(prog="python -m index", description="Build and change a document index.",
                                  parents=[common_options(suppress=False)])
    sub = top.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", parents=[sub_common, embedding], help="index a folder: embed new and changed files, drop removed ones")
    build.add_argument("folder")
    build.add_argument("--rebuild", action="store_true",
                       help="build a new index from scratch beside the old one, then switch to it (after a model change)")
    build.add_argument("--prune", action="store_true", help="also drop documents whose files no longer exist anywhere")
    build.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                       help=f"characters per chunk (default {DEFAULT_CHUNK_SIZE})")
    build.add_argument("--chunk-overlap", type=int, default=DEFAULT_CHUNK_OVERLAP,
                       help=f"characters shared by neighbouring chunks (default {DEFAULT_CHUNK_OVERLAP})")
    build.add_argument("--batch-files", type=int, default=IndexSettings.batch_files,
                       help=f"commit after this many new or changed files (default {IndexSettings.batch_files}); "
                            "a stopped build resumes from the last commit")
    sub.add_parser("add", parents=[sub_common, embedding], help="index single files").add_argument("files", nargs="+")
    sub.add_parser("remove", parents=[sub_common], help="drop files from the index").add_argument("files", nargs="+")
    sub.add_parser("status", parents=[sub_common], help="what the index holds")
    check = sub.add_parser("check", parents=[sub_common],
                           help="verify that vectors, terms, catalog and generation files agree")
    check.add_argument("--repair", action="store_true", help="fix what can be fixed without embedding again")
    watch = sub.add_parser("watch", parents=[sub_common, embedding],
                           help="keep the index in step with a folder until Ctrl-C (new, changed, renamed, deleted files)")
    watch.add_argument("folder")
    copy = sub.add_parser("copy", parents=[sub_common], help="copy an index to another store without embedding again")
    copy.add_argument("source", help="the index to copy (folder or Milvus address)")
    copy.add_argument("destination", help="where to copy it (folder or Milvus address)")
    return top


def store_options(args: argparse.Namespace, location: str | None = None) -> dict:
    """Milvus options (collection, token from --milvus-token-file or MILVUS_TOKEN) for a
    Milvus location; folders take none."""
    from index.backends import is_milvus

    if not is_milvus(location or args.index):
        return {}
    from index.backends.milvus import milvus_options_from

    return milvus_options_from(args)


def check(args: argparse.Namespace) -> int:
    """Exit status 0 when the index is sound (or was repaired), 1 when findings remain."""
    from index.backends import is_milvus

    if is_milvus(args.index):
        from index import Index

        findings = Index.open(args.index, **store_options(args)).check(repair=args.repair)
    else:
        from index.backends.folder import FolderStore

        if not (Path(args.index) / "CURRENT").exists() and not any(Path(args.index).glob("gen-*")):
            raise FileNotFoundError(f"No index at {args.index}")
        findings = FolderStore(args.index, load=False).check(repair=args.repair)
    if args.json:
        print(json.dumps({"findings": findings}, indent=2))
    else:
        for line in findings:
            print(line)
        print("the index is sound" if not findings else f"{len(findings)} finding(s)")
    return 1 if any(not f.startswith("repaired:") for f in findings) else 0


def run(args: argparse.Namespace) -> int:
    from index import Index, IndexSettings

    if args.command == "copy":
        from index.copy import copy_index

        report = copy_index(args.source, args.destination, src_options=store_options(args, args.source),
                            dst_options=store_options(args, args.destination))
        print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
        return 0
    if args.command == "check":
        return check(args)
    if args.command == "watch":
        from index.watch import watch_command

        return watch_command(args.index, args.folder, args.quiet, IndexSettings(embedder=args.embedder),
                             **store_options(args))
    settings = IndexSettings(
        chunk_size=getattr(args, "chunk_size", DEFAULT_CHUNK_SIZE),
        chunk_overlap=getattr(args, "chunk_overlap", DEFAULT_CHUNK_OVERLAP),
        batch_files=getattr(args, "batch_files", IndexSettings.batch_files),
        embedder=getattr(args, "embedder", "auto"),
        show_progress=not args.quiet,
    )
    from index.backends import is_milvus

    options = store_options(args)
    if not is_milvus(args.index):
        # None of these commands searches: a folder index's vectors and postings are read only
        # when a merge needs them, so a build's memory does not grow with what it committed.
        options["load_parts"] = False
    index = Index.open(args.index, settings, create=args.command in ("build", "add"), **options)
    if args.command == "status":
        status = index.status()
        if args.json:
            print(json.dumps(status, indent=2))
        else:
            where = f" ({status['generation']})" if status["generation"] else ""
            print(f"{status['location']}: {status['documents']} documents, {status['chunks']} chunks{where}")
            print(f"embedder: {status['embedder']}")
            for d in index.documents():
                print(f"  {d.chunks:5d} chunks  {d.source}")
        return 0
    if args.command == "build":
        report = index.build(args.folder, quiet=args.quiet, prune=args.prune, rebuild=args.rebuild)
    elif args.command == "add":
        report = index.add(args.files, quiet=args.quiet)
    else:
        report = index.remove(args.files)
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
    for source, note in report.notes:
        print(f"note      {source}: {note}", file=sys.stderr)
    print(report.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code = run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        # The reader of our output went away (``status | head``): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("error: interrupted; the index keeps its last committed state", file=sys.stderr)
        return 130
    except Exception as e:  # every failure is one line for the user, not a traceback
        message = " ".join(str(e).split()) or type(e).__name__
        known = isinstance(e, (OSError, ValueError, RuntimeError))
        print(f"error: {message}" if known else f"error: {type(e).__name__}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
