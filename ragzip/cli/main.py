"""The ``ragzip`` command: index, compress, ask, demo, eval, compressors."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ragzip.errors import RagzipError

__all__ = ["build_parser", "main"]


def _json_arg(value: str) -> dict[str, object]:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"doc_weight\": 1.0}'")
    return parsed


def _add_compressor_args(p: argparse.ArgumentParser, default: str = "extractive") -> None:
    p.add_argument("--compressor", default=default, help=f"registered name (default {default})")
    p.add_argument("--params", type=_json_arg, default={}, help="compressor params as JSON")
    p.add_argument("--config", help="JSON/YAML file with a compressor or pipeline spec")


def _add_generator_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--generator",
        default="transformers",
        choices=["transformers", "openai", "none"],
        help="local transformers model, an OpenAI-compatible server, or none",
    )
    p.add_argument("--model", default=None, help="generator model (default smollm2-135m)")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible base URL (…/v1)")
    p.add_argument("--max-tokens", type=int, default=96)


def _spec_arg(value: str) -> str | dict[str, object]:
    """A component name, or a JSON spec like '{"type": "extractive", "params": {...}}'."""
    return _json_arg(value) if value.lstrip().startswith("{") else value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ragzip", description="Compress retrieved context before it reaches the LLM."
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show info logs, and the load reports and progress bars of the libraries ragzip "
        "uses (silenced by default)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build a FAISS index from text, markdown or JSONL files")
    p.add_argument("inputs", nargs="+", help="files or folders (.txt, .md, .jsonl, .json)")
    p.add_argument("--out", required=True, help="index directory to write")
    p.add_argument("--encoder", default="minilm")
    p.add_argument("--chunk-words", type=int, default=200, help="passage size for text files")
    p.add_argument("--append", action="store_true", help="add to an existing index")

    p = sub.add_parser("compress", help="compress documents for a query; JSON out")
    p.add_argument("--query", default="", help="the question the context must serve")
    p.add_argument("--docs", default="-", help="JSON list or JSONL of documents ('-' = stdin)")
    p.add_argument("--ratio", type=float, default=None, help="target compression ratio")
    p.add_argument("--tokens", type=int, default=None, help="target token count")
    p.add_argument("--keep", action="append", default=[], help="string that must be kept")
    p.add_argument(
        "--html",
        default=None,
        metavar="OUT.html",
        help="also write what was kept and dropped as one self-contained HTML file",
    )
    _add_compressor_args(p)

    p = sub.add_parser("ask", help="retrieve, compress and answer")
    p.add_argument("question")
    p.add_argument("--index", required=True, help="directory written by 'ragzip index'")
    p.add_argument("--top-k", type=int, default=8)
    p.add_argument("--ratio", type=float, default=4.0)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    _add_compressor_args(p)
    _add_generator_args(p)

    p = sub.add_parser("demo", help="index the bundled corpus and answer a few questions offline")
    p.add_argument("--ratio", type=float, default=4.0)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--question", action="append", default=None, help="ask this instead")
    p.add_argument(
        "--no-compare",
        dest="compare",
        action="store_false",
        help="skip the side-by-side run of the extractive, token-prune and abstractive compressors",
    )
    p.add_argument(
        "--html",
        default=None,
        metavar="OUT.html",
        help="also write the side-by-side view as one self-contained HTML file",
    )
    _add_compressor_args(p)
    _add_generator_args(p)
    p.set_defaults(max_tokens=48)

    p = sub.add_parser("eval", help="score a compressor on nq20 or code-needle files")
    p.add_argument("task", choices=["nq20", "code-needle"])
    p.add_argument("file", help="benchmark JSONL (.gz accepted)")
    p.add_argument("--target", type=float, required=True, help="compression ratio to score")
    p.add_argument("--predictions", default=None, help="write {id, compressed} JSONL here")
    p.add_argument("--limit", type=int, default=None, help="first N records only")
    p.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="records compressed at once by a thread pool (default 1); pair it with a "
        'generator that batches, e.g. --params \'{"generator": {"type": "transformers", '
        '"params": {"model": "smollm2-135m", "batch_size": 8}}}\'. s/record is then '
        "wall-clock / records (throughput)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--html",
        default=None,
        metavar="OUT.html",
        help="write a sample of the scored records (misses first) as one self-contained HTML file",
    )
    p.add_argument(
        "--html-sample", type=int, default=20, help="records in the --html report (default 20)"
    )
    _add_compressor_args(p)

    sub.add_parser("compressors", help="list registered compressors and their parameters")

    p = sub.add_parser("serve", help="run the REST sidecar (FastAPI on uvicorn; ragzip[server])")
    p.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="TCP port (default 8000)")
    p.add_argument("--config", default=None, help="YAML/JSON file of server settings")
    p.add_argument("--index", default=None, help="FAISS index directory for retrieve/query")
    p.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    p.add_argument("--compressor", type=_spec_arg, default=None, help="default compressor spec")
    p.add_argument("--generator", type=_spec_arg, default=None, help="generator spec for query")
    p.add_argument("--upstream-url", default=None, help="mount the chat proxy to this /v1 URL")
    p.add_argument("--serve-local-generator", action="store_true", default=None)
    p.add_argument("--max-concurrency", type=int, default=None)
    p.add_argument("--max-queue", type=int, default=None)
    p.add_argument("--request-timeout", type=float, default=None, help="seconds (504 beyond)")
    p.add_argument("--max-body-bytes", type=int, default=None)
    p.add_argument("--no-warm-up", dest="warm_up", action="store_false", default=None)
    p.add_argument("--graceful-shutdown", type=float, default=None, help="seconds (default 30)")
    p.add_argument(
        "--shutdown-drain",
        type=float,
        default=None,
        help="seconds served with /readyz 503 after SIGTERM, before shutdown (default 2)",
    )
    p.add_argument("--log-level", default="info")

    p = sub.add_parser(
        "train",
        help="train ragzip's relevance model on question-answer data (tuned bi-encoder or cross)",
    )
    p.add_argument("--out", required=True, help="directory to write the trained model to")
    p.add_argument(
        "--data",
        action="append",
        required=True,
        help="JSONL of {question, answers, documents[, gold_index]} records (repeat)",
    )
    p.add_argument(
        "--kind",
        default="bi-encoder",
        choices=["bi-encoder", "cross"],
        help="bi-encoder: tune the sentence encoder (default, what ships); cross: a cross "
        "model with passage and token heads",
    )
    p.add_argument("--records", default=None, help="START:STOP: only these records of each file")
    p.add_argument("--work", default=None, help="training state (default OUT)")
    p.add_argument("--base", default="minilm", help="encoder to adapt (default minilm)")
    p.add_argument(
        "--negatives",
        type=int,
        default=None,
        help="other passages per question (bi-encoder default 2, cross 3)",
    )
    p.add_argument(
        "--hard-negatives",
        type=int,
        default=None,
        help="bi-encoder: negative sentences per question (default 7); cross: of the "
        "negative passages, the lexically closest (default 2)",
    )
    p.add_argument("--batch", type=int, default=None, help="questions per step (16 / 4)")
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--epochs", type=int, default=None, help="default 3 (bi-encoder), 2 (cross)")
    p.add_argument("--learning-rate", type=float, default=None, help="default 5e-4 / 1e-3")
    p.add_argument("--max-length", type=int, default=None, help="tokens per input (128 / 256)")
    p.add_argument("--val-share", type=float, default=0.1, help="held-out share of records")
    p.add_argument("--max-records", type=int, default=None)
    p.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-resume", dest="resume", action="store_false", help="start afresh")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "train-pruner", help="distil word keep/drop labels from a teacher and train a pruner"
    )
    p.add_argument("--out", required=True, help="directory to write the trained pruner to")
    p.add_argument("--corpus", action="append", default=[], help="JSONL/JSON/text file (repeat)")
    p.add_argument(
        "--records", default=None, help="START:STOP: only these records of each corpus file"
    )
    p.add_argument(
        "--documents",
        default="all",
        choices=["all", "gold"],
        help="nq20-style records: train on all their documents or the gold one only",
    )
    p.add_argument("--work", default=None, help="labels cache and training state (default OUT)")
    p.add_argument("--base", default="minilm", help="student encoder (default minilm)")
    p.add_argument(
        "--mode",
        default="lora",
        choices=["lora", "full"],
        help="lora: save only LoRA adapters and the head (small); full: the whole checkpoint",
    )
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument(
        "--teacher",
        default="surprisal",
        choices=["surprisal", "unigram", "openai"],
        help="surprisal: SmolLM2-135M (seconds per passage on CPU); unigram: word frequencies "
        "of the corpus (fast); openai: an LLM server (--base-url)",
    )
    p.add_argument("--teacher-model", default="smollm2-135m", help="teacher LM name")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible /v1 URL (openai teacher)")
    p.add_argument("--keep-rate", type=float, default=0.5, help="share of words labelled keep")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--learning-rate", type=float, default=None, help="default 1e-3 (lora), 1e-4 (full)"
    )
    p.add_argument("--max-length", type=int, default=256, help="student tokens per example")
    p.add_argument("--passage-words", type=int, default=120)
    p.add_argument("--max-passages", type=int, default=None)
    p.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-resume", dest="resume", action="store_false", help="start afresh")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "train-code",
        help="train the code compressor's relevance model on the documented functions of git "
        "checkouts (self-supervised)",
    )
    p.add_argument(
        "--repo", action="append", required=True, help="folder of a git checkout (repeat)"
    )
    p.add_argument("--out", required=True, help="directory to write the trained model to")
    p.add_argument("--work", default=None, help="training state (default OUT)")
    p.add_argument("--base", default="minilm", help="encoder to adapt (default minilm)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=16, help="questions per step")
    p.add_argument(
        "--hard-negatives", type=int, default=2, help="same-file chunks per question (default 2)"
    )
    p.add_argument(
        "--max-pairs-per-repo",
        type=int,
        default=400,
        help="documented functions sampled per repository (default 400; 0: all)",
    )
    p.add_argument("--max-length", type=int, default=128, help="tokens per chunk (default 128)")
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--val-share", type=float, default=0.1, help="held-out share of files")
    p.add_argument("--include-tests", action="store_true", help="also mine tests, docs, vendor")
    p.add_argument(
        "--hold-out",
        action="append",
        default=[],
        metavar="[PATH::]NAME",
        help="a function never to train on, e.g. src/app.py::App.run (repeat)",
    )
    p.add_argument(
        "--hold-out-file",
        default=None,
        help="functions never to train on: one [PATH::]NAME per line, or code-needle tasks "
        "(JSONL, .gz too) whose targets are left out",
    )
    p.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-resume", dest="resume", action="store_false", help="start afresh")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "train-soft", help="train a soft encoder (segment -> decoder embeddings) by distillation"
    )
    p.add_argument("--out", required=True, help="directory to write the trained encoder to")
    p.add_argument("--corpus", action="append", default=[], help="JSONL/JSON/text file (repeat)")
    p.add_argument("--decoder", default="smollm2-135m", help="decoder the embeddings are for")
    p.add_argument("--kind", default="pool", choices=["pool", "lora"], help="encoder kind")
    p.add_argument("--rate", type=int, default=4, help="tokens per soft embedding")
    p.add_argument("--segment-tokens", type=int, default=64, help="tokens per cached segment")
    p.add_argument("--layers", type=int, default=4, help="decoder layers of the lora encoder")
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--context-tokens", type=int, default=96, help="context tokens per window")
    p.add_argument("--target-tokens", type=int, default=32, help="continuation tokens per window")
    p.add_argument("--eval-windows", type=int, default=32, help="held-out windows")
    p.add_argument("--max-texts", type=int, default=None, help="read at most N corpus texts")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-resume", dest="resume", action="store_false", help="start afresh")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for usage or input errors)."""
    args = build_parser().parse_args(argv)
    from ragzip.cli import console

    console.setup(verbose=args.verbose)
    from ragzip.cli import commands

    handler = getattr(commands, f"cmd_{args.command.replace('-', '_')}")
    try:
        return int(handler(args) or 0)
    except RagzipError as exc:
        print(f"ragzip {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
