"""Speed of the token pruner against the llmlingua package and the bare model forward pass.

One ~10,000-token input, pruned at rate 1/3 with LLMLingua-2's word semantics, for two models:
  minilm    a pruner on all-MiniLM-L6-v2's BERT (``--pruner DIR``, default: a seeded random
            head; speed does not depend on the head's weights)
  large     an XLM-R-large-sized encoder (24 layers, 1024 wide, 16 heads) with random weights
            and MiniLM's WordPiece vocabulary (no XLM-R tokenizer is available offline)
Rows: llmlingua's PromptCompressor(use_llmlingua2=True) end to end (fp32), ragzip end to end
(fp32, bf16 autocast, dynamic int8), and the bare forward pass over the same chunks with the
same batching, plus keep-decision agreement of each fast path with ragzip fp32.

    .venv/bin/python benchmarks/bench_token_prune.py --threads 2 \
        --out benchmarks/results/token_prune_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ragzip.compressors.token_prune.compressor import llmlingua_labels
from ragzip.compressors.token_prune.model import TokenScorer
from ragzip.compressors.token_prune.words import chunk_bounds
from ragzip.models import resolve_model
from ragzip.testing.fixtures import unique_text
from ragzip.training.pruner import init_pruner

RATE = 1 / 3


def make_large(folder: Path) -> Path:
    import transformers

    base = resolve_model("minilm").path
    config = transformers.BertConfig.from_pretrained(
        base,
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        num_labels=2,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformers.BertForTokenClassification(config)
    out = folder / "large-bert-base-multilingual-cased"
    model.save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


def text_of(tokens: int, path: Path) -> str:
    scorer = TokenScorer(str(path))
    chars = tokens * 5
    while True:
        text = unique_text(chars, seed=1)
        n = scorer.encode(text)[0].size
        if n >= tokens:
            return text
        chars = int(chars * tokens / n) + 100


def timed(fn: Any, repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bare_forward(scorer: TokenScorer, text: str) -> Any:
    """The model calls alone, on the chunks and batches ragzip uses."""
    tokenizer, model = scorer.tokenizer, scorer.model
    ids, _ = scorer.encode(text)
    bounds = chunk_bounds(scorer._tables["end"][ids], scorer._chunk_tokens)
    chunks = [ids[a:b] for a, b in bounds]
    batches = []
    for b in range(0, len(chunks), scorer.batch_size):
        group = chunks[b : b + scorer.batch_size]
        width = max(c.size for c in group) + 2
        x = torch.full((len(group), width), tokenizer.pad_token_id or 0, dtype=torch.long)
        m = torch.zeros_like(x)
        for row, c in enumerate(group):
            seq = [tokenizer.cls_token_id, *c.tolist(), tokenizer.sep_token_id]
            x[row, : len(seq)] = torch.tensor(seq)
            m[row, : len(seq)] = 1
        batches.append((x, m))

    def run() -> None:
        with torch.inference_mode():
            for x, m in batches:
                if scorer.dtype == "bf16":
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        model(input_ids=x, attention_mask=m)
                else:
                    model(input_ids=x, attention_mask=m)

    return run, len(chunks)


def bench_model(
    name: str,
    path: Path,
    text: str,
    repeats: int,
    skip_llmlingua: bool,
    dtypes: tuple[str, ...] = ("fp32", "bf16", "int8"),
) -> list[dict]:
    rows: list[dict] = []
    n_tokens = int(TokenScorer(str(path)).encode(text)[0].size)
    reference = None
    if not skip_llmlingua:
        from ragzip.compressors.token_prune.llmlingua_backend import LLMLinguaBackend

        backend = LLMLinguaBackend(str(path))
        backend.word_labels(text[:2000], rate=RATE)  # warm up
        seconds, labels = timed(lambda: backend.word_labels(text, rate=RATE), repeats)
        reference = np.array([label for _, label in labels])
        rows.append({"model": name, "impl": "llmlingua", "dtype": "fp32", "seconds": seconds})
        del backend
    fp32_keep = None
    for dtype in dtypes:
        scorer = TokenScorer(str(path), dtype=dtype)  # type: ignore[arg-type]
        scorer.warm_up()
        seconds, (_, keep) = timed(lambda s=scorer: llmlingua_labels(s, text, RATE), repeats)
        run, n_chunks = bare_forward(scorer, text)
        bare, _ = timed(run, repeats)
        if dtype == "fp32":
            fp32_keep = keep
        row = {
            "model": name,
            "impl": "ragzip",
            "dtype": dtype,
            "seconds": seconds,
            "bare_forward_s": bare,
            "overhead_x": seconds / bare,
            "chunks": n_chunks,
            "agreement_vs_fp32": float(np.mean(keep == fp32_keep)),
        }
        if reference is not None and reference.size == keep.size:
            row["agreement_vs_llmlingua"] = float(np.mean(keep == reference))
            row["speedup_vs_llmlingua"] = rows[0]["seconds"] / seconds
        rows.append(row)
        print(json.dumps(row))
    for row in rows:
        row["tokens"] = n_tokens
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pruner", default=None, help="trained MiniLM pruner directory")
    parser.add_argument("--models", default="minilm,large")
    parser.add_argument("--skip-llmlingua", action="store_true")
    parser.add_argument("--dtypes", default="fp32,bf16,int8", help="ragzip dtypes (minilm)")
    parser.add_argument("--large-dtypes", default="fp32,int8", help="ragzip dtypes (large)")
    parser.add_argument("--out", default="benchmarks/results/token_prune_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        minilm = folder / "minilm-bert-base-multilingual-cased"  # llmlingua picks rules by name
        if args.pruner:
            minilm.symlink_to(Path(args.pruner).resolve(), target_is_directory=True)
        else:
            init_pruner(minilm)
        text = text_of(args.tokens, minilm)
        for name in args.models.split(","):
            path = minilm if name == "minilm" else make_large(folder)
            repeats = args.repeats if name == "minilm" else 1
            dtypes = args.dtypes if name == "minilm" else args.large_dtypes
            rows += bench_model(
                name, path, text, repeats, args.skip_llmlingua, tuple(dtypes.split(","))
            )
    meta = {
        "threads": args.threads,
        "cpu": platform.machine(),
        "torch": torch.__version__,
        "rate": RATE,
        "tokens": args.tokens,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if Path(args.out).is_file():  # keep rows of models not run this time
        old = json.loads(Path(args.out).read_text())
        done = {r["model"] for r in rows}
        rows = [r for r in old.get("rows", []) if r["model"] not in done] + rows
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
