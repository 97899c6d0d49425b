"""Bare forward pass of a token pruner under several CPU runtimes (is there a faster engine?).

The token pruner's end-to-end time is its model's forward pass (ragzip adds ~5%, llmlingua
~25%), so a 3x speed-up over llmlingua at the same decisions needs a forward pass ~2.4x faster
than PyTorch fp32. This measures the candidates on the same batch of chunks (16 x 500 tokens,
MiniLM pruner with a seeded head) and the largest keep-probability change against torch fp32:

  torch fp32 / bf16 autocast / bf16 weights / torch.compile (fp32, bf16) /
  ONNX Runtime fp32 (graph optimizations on) / ONNX Runtime dynamic int8 (per-tensor, per-channel)

    .venv/bin/python benchmarks/bench_prune_runtimes.py --threads 2 \
        --out benchmarks/results/prune_runtimes.json

ONNX rows need ``pip install onnx onnxruntime`` (skipped otherwise).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ragzip.training.pruner import init_pruner


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def keep_probs(logits: Any) -> np.ndarray:
    arr = np.asarray(logits, dtype=np.float64)
    arr = np.exp(arr - arr.max(-1, keepdims=True))
    return np.asarray(arr[..., 1] / arr.sum(-1))


def torch_rows(path: Path, ids: torch.Tensor, mask: torch.Tensor, repeats: int) -> list[dict]:
    import transformers

    load = transformers.AutoModelForTokenClassification.from_pretrained
    fp32 = load(path).eval()
    bf16 = load(path, dtype=torch.bfloat16).eval()
    rows = []
    with torch.inference_mode():
        ref = keep_probs(fp32(input_ids=ids, attention_mask=mask).logits.float())

        def autocast() -> Any:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return fp32(input_ids=ids, attention_mask=mask).logits

        runs: dict[str, Callable[[], Any]] = {
            "torch fp32": lambda: fp32(input_ids=ids, attention_mask=mask).logits,
            "torch bf16 autocast": autocast,
            "torch bf16 weights": lambda: bf16(input_ids=ids, attention_mask=mask).logits,
        }
        compiled32, compiled16 = torch.compile(fp32), torch.compile(bf16)
        runs["torch.compile fp32"] = lambda: compiled32(input_ids=ids, attention_mask=mask).logits
        runs["torch.compile bf16"] = lambda: compiled16(input_ids=ids, attention_mask=mask).logits
        for name, fn in runs.items():
            seconds = best_of(fn, repeats)
            diff = float(np.abs(keep_probs(fn().float()) - ref).max())
            rows.append({"runtime": name, "seconds": seconds, "max_prob_diff": diff})
    return rows


def onnx_rows(
    path: Path, ids: torch.Tensor, mask: torch.Tensor, threads: int, repeats: int, tmp: Path
) -> list[dict]:
    try:
        import onnx
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        print("onnx/onnxruntime not installed: ONNX rows skipped")
        return []
    import transformers

    model = transformers.AutoModelForTokenClassification.from_pretrained(path).eval()
    with torch.inference_mode():
        ref = keep_probs(model(input_ids=ids, attention_mask=mask).logits)
    exported = tmp / "pruner.onnx"
    torch.onnx.export(
        model,
        (ids, mask),
        str(exported),
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_axes={k: {0: "batch", 1: "seq"} for k in ("input_ids", "attention_mask", "logits")},
        opset_version=17,
        dynamo=False,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    files = {"onnxruntime fp32": exported}
    for per_channel in (False, True):
        out = tmp / f"pruner-int8-{per_channel}.onnx"
        quantize_dynamic(
            str(exported),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        files[f"onnxruntime int8{' per-channel' if per_channel else ''}"] = out
    feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    rows = []
    for name, file in files.items():
        session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        seconds = best_of(lambda s=session: s.run(None, feed), repeats)
        diff = float(np.abs(keep_probs(session.run(None, feed)[0]) - ref).max())
        rows.append({"runtime": name, "seconds": seconds, "max_prob_diff": diff})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (args.batch, args.length), generator=generator)
    mask = torch.ones_like(ids)
    with tempfile.TemporaryDirectory() as tmp:
        path = init_pruner(Path(tmp) / "pruner")
        rows = torch_rows(path, ids, mask, args.repeats)
        rows += onnx_rows(path, ids, mask, args.threads, args.repeats, Path(tmp))
    base = rows[0]["seconds"]
    for row in rows:
        row["speedup_vs_torch_fp32"] = base / row["seconds"]
        print(
            f"{row['runtime']:<32} {row['seconds']:7.3f} s  {row['speedup_vs_torch_fp32']:5.2f}x"
            f"  max keep-prob diff {row['max_prob_diff']:.4f}"
        )
    meta = {
        "threads": args.threads,
        "batch": args.batch,
        "length": args.length,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
