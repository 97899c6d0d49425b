"""Implementations of the ``ragzip`` sub-commands (parsing lives in :mod:`ragzip.cli.main`,
reading documents in :mod:`ragzip.cli.corpus`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from ragzip.cli.corpus import load_corpus, read_documents
from ragzip.compressors.base import Compressor
from ragzip.compressors.registry import compressors
from ragzip.errors import ConfigError
from ragzip.registry import load_spec
from ragzip.types import Budget, Document


# -- shared helpers ----------------------------------------------------------------------------
def _compressor(args: argparse.Namespace, **defaults: Any) -> Compressor:
    if args.config:
        spec = load_spec(args.config)
        spec = spec.get("compressor", spec)
    else:
        spec = {"type": args.compressor, "params": {**defaults, **args.params}}
    built: Compressor = compressors.build(spec)
    return built


def _generator(args: argparse.Namespace) -> Any:
    if args.generator == "none":
        return None
    from ragzip.generators.registry import generators

    if args.generator == "openai":
        if not args.base_url or not args.model:
            raise ConfigError("--generator openai needs --base-url and --model")
        return generators.build(
            {"type": "openai", "params": {"base_url": args.base_url, "model": args.model}}
        )
    return generators.build(
        {"type": "transformers", "params": {"model": args.model or "smollm2-135m"}}
    )


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# -- commands ------------------------------------------------------------------------------------
def cmd_compressors(args: argparse.Namespace) -> int:
    for name in compressors.names():
        info = compressors.describe(name)
        print(f"{name}: {info['summary']}")
        for key, value in info["params"].items():
            print(f"    {key} = {value!r}")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from ragzip.retrievers.faiss_index import FaissRetriever

    docs = load_corpus(args.inputs, args.chunk_words)
    out = Path(args.out)
    if args.append and (out / "manifest.json").is_file():
        index = FaissRetriever.load(out)
    else:
        index = FaissRetriever(args.encoder)
    index.add(docs, show_progress=True)
    index.save(out)
    print(f"indexed {len(docs)} passages -> {out} ({len(index)} in total)")
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    docs = read_documents(args.docs)
    if args.ratio is None and args.tokens is None:
        args.ratio = 4.0
    budget = Budget(ratio=args.ratio, tokens=args.tokens, keep=tuple(args.keep))
    compressor = _compressor(args)
    if args.html:
        from ragzip.inspector import check_report_path

        check_report_path(args.html)
    result = compressor.compress(args.query, docs, budget)
    _print_json(result.to_dict())
    if args.html:
        from ragzip.inspector import Run, build_view, write_report

        view = build_view(args.query, docs, [Run(compressor.name, result)], budget=budget.to_dict())
        path = write_report(args.html, [view], title=f"ragzip: {compressor.name}")
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _pipeline(args: argparse.Namespace, retriever: Any) -> Any:
    from ragzip.middleware.pipeline import Pipeline

    generator = _generator(args)
    defaults = {}
    if args.generator == "transformers":  # count tokens as the generator will see them
        defaults["tokenizer"] = f"hf:{args.model or 'smollm2-135m'}"
    return Pipeline(
        _compressor(args, **defaults),
        retriever,
        generator,
        budget=Budget(ratio=args.ratio),
        top_k=args.top_k,
        max_tokens=args.max_tokens,
    )


def cmd_ask(args: argparse.Namespace) -> int:
    from ragzip.retrievers.faiss_index import FaissRetriever

    pipeline = _pipeline(args, FaissRetriever.load(args.index))
    result = pipeline.run(args.question)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result.answer if result.answer is not None else result.context)
        print(json.dumps(result.stats()), file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ragzip.cli.showcase import print_answers, print_table
    from ragzip.retrievers.faiss_index import FaissRetriever

    data = resources.files("ragzip") / "data"
    corpus = [json.loads(line) for line in (data / "demo_corpus.jsonl").read_text().splitlines()]
    questions = args.question or json.loads((data / "demo_questions.json").read_text())
    print(f"ragzip demo: indexing {len(corpus)} bundled passages with FAISS (in process)...")
    index = FaissRetriever("minilm")
    index.add([Document.from_any(d, i) for i, d in enumerate(corpus)])
    with tempfile.TemporaryDirectory() as tmp:  # the index persists and reloads like a real one
        index.save(tmp)
        index = FaissRetriever.load(tmp)
    pipeline = _pipeline(args, index)
    print("loading models (the first run converts SmolLM2 once and caches it)...")
    with contextlib.suppress(AttributeError):
        pipeline.compressor.warm_up()
    if pipeline.generator is not None:
        pipeline.generator.warm_up()
    results = [pipeline.run(question) for question in questions]
    counter = pipeline.compressor.counter.name
    print(f"\n{args.compressor} at {args.ratio:g}x, tokens counted with the {counter!r} counter:")
    print_table(results)
    print_answers(results)
    if args.compare and results:
        from ragzip.cli.showcase import DEMO_COMPRESSORS, compare, print_rows

        first = results[0]
        ratio = max(args.ratio, 8.0)
        print(
            f"\nthe same retrieved documents under each text compressor at {ratio:g}x "
            f"(words; the token pruner is ragzip's packaged default, minilm-pruner):"
        )
        print(f"Q: {first.query}")
        docs = [item.document for item in first.retrieved]
        runs = compare(first.query, docs, Budget(ratio=ratio), DEMO_COMPRESSORS)
        print_rows(runs)
        if args.html:
            from ragzip.inspector import build_view, write_report

            view = build_view(first.query, docs, runs, budget=Budget(ratio=ratio).to_dict())
            print(f"\nwrote {write_report(args.html, [view], title='ragzip demo')}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ragzip.eval.benchmarks import load_jsonl, run_eval

    records = load_jsonl(args.file)[: args.limit] if args.limit else load_jsonl(args.file)
    compressor = _compressor(args, tokenizer="words")
    if getattr(compressor, "tokenizer", "words") != "words":
        print(
            "warning: the benchmark counts whitespace words; use tokenizer='words'", file=sys.stderr
        )
    sample = None
    if args.html:
        from ragzip.inspector import EvalSample, check_report_path

        check_report_path(args.html)  # before the run, not after it
        sample = EvalSample(args.html_sample)
    with contextlib.ExitStack() as stack:
        out = None
        if args.predictions:
            Path(args.predictions).parent.mkdir(parents=True, exist_ok=True)
            out = stack.enter_context(open(args.predictions, "w", encoding="utf-8"))
        summary = run_eval(
            args.task,
            records,
            compressor,
            args.target,
            predictions=out,
            progress=True,
            concurrency=args.concurrency,
            on_record=sample,
        )
    if args.json:
        print(json.dumps({"compressor": compressor.to_dict(), **summary.to_dict()}))
    else:
        print(summary.line())
    if sample is not None:
        from ragzip.inspector import write_report

        title = f"ragzip eval {args.task} at {args.target:g}x: {summary.line()}"
        path = write_report(args.html, sample.views(compressor.name), title=title)
        print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Runs the REST sidecar until Ctrl-C / SIGTERM.

    SIGTERM first drains (``shutdown_drain_s``: ``/readyz`` 503, ``Connection: close``), then
    uvicorn stops accepting connections and lets in-flight requests finish for up to
    ``graceful_shutdown_s`` seconds before it closes the rest and runs the app's shutdown.
    """
    from ragzip._optional import require

    require("uvicorn", "the REST server")
    require("fastapi", "the REST server")
    from pydantic import ValidationError

    from ragzip.adapters.rest import ServerSettings, create_app
    from ragzip.adapters.rest.server import serve

    try:
        settings = ServerSettings.load(
            args.config,
            host=args.host,
            port=args.port,
            index_dir=args.index,
            api_key=args.api_key,
            compressor=args.compressor,
            generator=args.generator,
            upstream_url=args.upstream_url,
            serve_local_generator=args.serve_local_generator,
            max_concurrency=args.max_concurrency,
            max_queue=args.max_queue,
            request_timeout_s=args.request_timeout,
            max_body_bytes=args.max_body_bytes,
            warm_up=args.warm_up,
            graceful_shutdown_s=args.graceful_shutdown,
            shutdown_drain_s=args.shutdown_drain,
        )
    except ValidationError as exc:
        raise ConfigError(f"invalid server settings: {exc}") from exc
    from ragzip.cli.console import uvicorn_log_config

    log_config = uvicorn_log_config(args.log_level)
    serve(create_app(settings), settings, log_level=args.log_level, log_config=log_config)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Trains ragzip's relevance model (tuned bi-encoder or cross) and prints its figures."""
    common: dict[str, Any] = {
        "out": args.out,
        "data": tuple(args.data),
        "records": args.records,
        "work": args.work,
        "base": args.base,
        "lora_rank": args.lora_rank,
        "lora_alpha": args.lora_alpha,
        "val_share": args.val_share,
        "max_records": args.max_records,
        "max_steps": args.max_steps,
        "seed": args.seed,
        "resume": args.resume,
        "progress": not args.quiet,
    }
    chosen = {
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "max_length": args.max_length,
        "hard_negatives": args.hard_negatives,
    }
    if args.kind == "cross":
        from ragzip.training.relevance import RelevanceTrainConfig, train_relevance

        chosen.update(negatives=args.negatives, batch_groups=args.batch)
        set_ = {k: v for k, v in chosen.items() if v is not None}
        report = train_relevance(RelevanceTrainConfig(**common, **set_))
        val = report["val"]
        figures = (
            f"passage top-1 {val['passage_top1']:.3f}, answer-sentence top-1 {val['keep_top1']:.3f}"
        )
        params = {"relevance": args.out}
    else:
        from ragzip.training.bi_encoder import BiEncoderTrainConfig, train_bi_encoder

        chosen.update(negative_passages=args.negatives, batch_questions=args.batch)
        set_ = {k: v for k, v in chosen.items() if v is not None}
        report = train_bi_encoder(BiEncoderTrainConfig(**common, **set_))
        before = report["val_before"] or {}
        figures = f"answer-sentence top-1 {report['val']['top1']:.3f}" + (
            f" (base model {before['top1']:.3f})" if before else ""
        )
        params = {"sentence_model": args.out}
    print(
        f"trained in {report['seconds']:.0f} s; held-out questions: {figures}; saved to {args.out}"
    )
    print(f"use it: ragzip compress --compressor extractive --params '{json.dumps(params)}'")
    return 0


def cmd_train_code(args: argparse.Namespace) -> int:
    """Trains the code relevance model on git checkouts and prints its held-out figures."""
    from ragzip.training.code import CodeTrainConfig, describe, train_code
    from ragzip.training.hold_out import read_hold_out

    hold_out = tuple(args.hold_out)
    if args.hold_out_file:
        hold_out += read_hold_out(args.hold_out_file)
    config = CodeTrainConfig(
        repos=tuple(args.repo),
        out=args.out,
        work=args.work,
        base=args.base,
        epochs=args.epochs,
        batch_questions=args.batch,
        hard_negatives=args.hard_negatives,
        max_pairs_per_repo=args.max_pairs_per_repo or None,
        max_length=args.max_length,
        learning_rate=args.learning_rate,
        lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha,
        val_share=args.val_share,
        include_tests=args.include_tests,
        hold_out=hold_out,
        max_steps=args.max_steps,
        seed=args.seed,
        resume=args.resume,
        progress=not args.quiet,
    )
    report = train_code(config)
    card = report["data_card"]
    held = card["held_out"]
    left_out = (
        f" ({held['found']} of {held['listed']} held-out functions found and left out)"
        if held["listed"]
        else ""
    )
    print(
        f"mined {card['train_questions'] + card['val_questions']} documented functions from "
        f"{len(card['repositories'])} repositories{left_out}; trained in "
        f"{report['seconds']:.0f} s; {describe(report)}; saved to {args.out}"
    )
    params = {"encoder": args.out}
    print(f"use it: ragzip compress --compressor code --params '{json.dumps(params)}'")
    return 0


def cmd_train_pruner(args: argparse.Namespace) -> int:
    """Trains a token pruner by data distillation and prints its report."""
    from ragzip.training.pruner import TrainConfig, train_pruner

    config = TrainConfig(
        out=args.out,
        corpus=tuple(args.corpus),
        records=args.records,
        documents=args.documents,
        work=args.work,
        base=args.base,
        mode=args.mode,
        lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha,
        teacher=args.teacher,
        teacher_model=args.teacher_model,
        base_url=args.base_url,
        keep_rate=args.keep_rate,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_length=args.max_length,
        passage_words=args.passage_words,
        max_passages=args.max_passages,
        max_steps=args.max_steps,
        seed=args.seed,
        resume=args.resume,
        progress=not args.quiet,
    )
    report = train_pruner(config)
    val = report["val"]
    print(
        f"trained ({args.mode}) on {report['train_examples']} passages "
        f"({report['teacher']} teacher) in {report['seconds']:.0f} s; "
        f"validation F1 {val['f1']:.3f} (precision {val['precision']:.3f}, "
        f"recall {val['recall']:.3f}); saved to {args.out}"
    )
    params = json.dumps({"model": args.out})
    print(f"use it: ragzip compress --compressor token-prune --params '{params}'")
    return 0


def cmd_train_soft(args: argparse.Namespace) -> int:
    """Trains a soft encoder by distillation and prints its held-out figures."""
    from ragzip.encoders.soft.config import SoftConfig
    from ragzip.training.soft import SoftTrainConfig, train_soft

    config = SoftConfig(
        decoder=args.decoder,
        rate=args.rate,
        segment_tokens=args.segment_tokens,
        kind=args.kind,
        layers=args.layers,
        lora_rank=args.lora_rank,
    )
    train = SoftTrainConfig(
        out=args.out,
        corpus=tuple(args.corpus),
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        context_tokens=args.context_tokens,
        target_tokens=args.target_tokens,
        eval_windows=args.eval_windows,
        max_texts=args.max_texts,
        seed=args.seed,
        device=args.device,
        resume=args.resume,
        progress=not args.quiet,
    )
    report = train_soft(train, config)
    after = report["eval_after"]
    if after:
        print(
            f"held-out loss (nats/token): full {after['full']:.3f}, soft {after['soft']:.3f}, "
            f"none {after['none']:.3f}; the soft context recovers "
            f"{after['recovered']:.0%} of the gap"
        )
    windows = report["windows"]["train"]
    print(f"trained {windows} windows in {report['seconds']} s; saved to {args.out}")
    spec = json.dumps({"type": "soft", "params": {"encoder": args.out}})
    print(f"use it: SoftGenerator({args.out!r}) or the generator spec {spec}")
    return 0
