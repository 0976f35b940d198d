"""python -m qa "question" [--json] [--index DIR]; with no question, an interactive prompt
where each question may follow up on the earlier ones (``qa.Conversation``).

Options may come before or after the question's words.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from index import IndexMismatch, IndexNotFound, IndexStoreError
from qa import Conversation, QuestionError, default_engine
from qa.types import Answer


def format_answer(answer: Answer, width: int = 100) -> str:
    """The answer and its citations as terminal text."""
    lines = [f"(understood as: {answer.understood_as})"] if answer.understood_as else []
    lines.append(answer.text if answer.found else "Not found in the documents.")
    if not answer.found and answer.citations:
        lines.append("  Closest passages (not an answer):")
    for i, c in enumerate(answer.citations[:3], start=1):
        where = f"{Path(c.source).name}" + (f", page {c.page}" if c.page else "") + f", characters {c.start}-{c.end}"
        quote = c.quote if len(c.quote) <= width else c.quote[: width - 4] + " ..."
        lines.append(f"  [{i}] {where}:")
        lines.append(f"      \"{quote}\"")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m qa", description="Ask a question of your indexed documents.")
    p.add_argument("question", nargs="*", help="the question; leave out for an interactive prompt")
    p.add_argument("--index", help="index folder or Milvus address such as milvus:FILE.db or milvus://HOST:PORT "
                   "(default: the index over seeds/, built on first use)")
    p.add_argument("--collection", help="Milvus collection (default: documents)")
    p.add_argument("--milvus-token-file", help="file holding the Milvus token (else MILVUS_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--top-k", type=int, help="passages to read and cite")
    p.add_argument("--reader", choices=["auto", "sentence", "neural"], help="which reader extracts the answer")
    p.add_argument("--min-score", type=float, help="abstain below this confidence (0-1)")
    return p


def open_location(args: argparse.Namespace):
    """``args.index`` as ``default_engine`` takes it: a Milvus address opened with its options
    (collection, token from --milvus-token-file or MILVUS_TOKEN), anything else as given."""
    from index.backends import is_milvus

    if args.index is None or not is_milvus(args.index):
        return args.index
    from index import Index
    from index.backends.milvus import milvus_options_from

    return Index.open(args.index, **milvus_options_from(args))


def main(argv: list[str] | None = None) -> int:
    """Answer the question given on the command line (or each one typed at the prompt).

    Returns:
        0 when answered (found or not), 2 for a question or option the engine refuses.
    """
    args = parser().parse_intermixed_args(argv)
    try:
        engine = default_engine(open_location(args))
    except (IndexNotFound, IndexMismatch, IndexStoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    overrides = {"top_k": args.top_k, "reader": args.reader, "min_score": args.min_score}

    def answer_one(question: str, conversation: Conversation | None = None) -> int:
        try:
            answer = (conversation or engine).ask(question, **overrides)
        except (QuestionError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2) if args.json else format_answer(answer))
        return 0

    if args.question:
        return answer_one(" ".join(args.question))
    # At the prompt, a question may follow up on the earlier ones ("Where did he speak?").
    conversation = Conversation(engine=engine)
    print(f"Ask questions of {len(engine.documents())} document(s); a follow-up may say \"he\" or \"and ZTE?\". "
          "Empty line or Ctrl-D to quit.")
    while True:
        try:
            question = input("? ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        except UnicodeDecodeError:
            print("error: that line is not UTF-8 text; type the question again", file=sys.stderr)
            continue
        if not question.strip():
            return 0
        answer_one(question, conversation)
        print()


def run(argv: list[str] | None = None) -> int:
    """``main``, ending quietly when whoever reads the output stops early (``| head``)."""
    try:
        code = main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # Point stdout at /dev/null so that the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(run())
