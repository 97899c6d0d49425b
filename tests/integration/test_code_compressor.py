"""CodeCompressor: the compressor contract, LM scoring, elision markers and the knapsack."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragzip.compressors.code import CodeCompressor, LMScorer
from ragzip.compressors.code.compressor import knapsack
from ragzip.testing import CompressorContract
from ragzip.types import Budget, Document

pytestmark = pytest.mark.integration
pytest.importorskip("tree_sitter")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "code"


def _source_docs() -> list[Document]:
    return [
        Document(p.read_text(encoding="utf-8"), id=p.name, metadata={"path": p.name})
        for p in sorted(FIXTURES.iterdir())
    ]


class TestCodeCompressorContract(CompressorContract):
    large_document_chars = 60_000

    @pytest.fixture(scope="class")
    def compressor(self) -> CodeCompressor:
        return CodeCompressor(scoring="bi")


@pytest.fixture(scope="module")
def code() -> CodeCompressor:
    return CodeCompressor(tokenizer="words")


def test_keeps_the_relevant_function_and_marks_elisions(code: CodeCompressor) -> None:
    doc = Document((FIXTURES / "inventory.py").read_text(encoding="utf-8"), id="inv",
                   metadata={"path": "inventory.py"})  # fmt: skip
    result = code.compress("Increase the stock of an item by an amount.", [doc], Budget(ratio=2))
    text = result.text()
    assert "def restock(self, amount: int) -> None:" in text
    assert "self.quantity += amount" in text
    assert result.tokens_after <= Budget(ratio=2).limit(result.tokens_before)
    assert "# ... " in text and "lines omitted" in text
    for line in text.splitlines():  # whole source lines, or markers
        assert line in doc.text.splitlines() or line.lstrip().startswith("# ...")


def test_elision_uses_the_language_comment_syntax(code: CodeCompressor) -> None:
    doc = Document((FIXTURES / "server.go").read_text(encoding="utf-8"), id="go",
                   metadata={"path": "server.go"})  # fmt: skip
    text = code.compress("Start serving HTTP on the address.", [doc], Budget(ratio=3)).text()
    assert "func (s *Server) Start() error {" in text
    assert "// ... " in text and "# ..." not in text


def test_fine_stage_prunes_a_function_that_does_not_fit(code: CodeCompressor) -> None:
    body = "\n\n".join(
        f"    step_{i} = compute_{i}(values)\n    total += step_{i}" for i in range(30)
    )
    src = f"import math\n\n\ndef accumulate(values):\n    total = 0\n\n{body}\n    return total\n"
    doc = Document(src, id="big", metadata={"language": "python"})
    result = code.compress("Accumulate the values into a total.", [doc], Budget(tokens=60))
    text = result.text()
    assert result.tokens_after <= 60
    assert "def accumulate(values):" in text  # the header always survives pruning
    assert "lines omitted" in text
    assert not result.documents[0].metadata.get("truncated")


def test_skeleton_adds_signatures_of_dropped_functions() -> None:
    comp = CodeCompressor(tokenizer="words", skeleton=True)
    doc = Document((FIXTURES / "cart.js").read_text(encoding="utf-8"), id="cart",
                   metadata={"path": "cart.js"})  # fmt: skip
    result = comp.compress("Apply tax to an amount.", [doc], Budget(ratio=1.6))
    text = result.text()
    assert "export function withTax(amount) {" in text
    assert result.tokens_after <= Budget(ratio=1.6).limit(result.tokens_before)
    assert sum(ln.strip().endswith("{") for ln in text.splitlines()) >= 3


def test_must_keep_lines_survive(code: CodeCompressor) -> None:
    docs = _source_docs()
    budget = Budget(ratio=6, keep=("RING_SIZE 64",))
    result = code.compress("How is a job queued?", docs, budget)
    assert "#define RING_SIZE 64" in result.text()
    assert result.tokens_after <= budget.limit(result.tokens_before)


def test_lm_scorer_ranks_the_matching_chunk_first() -> None:
    scorer = LMScorer("smollm2-135m", max_chunk_tokens=64)
    chunks = [
        "def add(a, b):\n    return a + b",
        "def read_config(path):\n    with open(path) as f:\n        return json.load(f)",
        "WELCOME = 'hello world'",
    ]
    query = "Load the JSON configuration file at the given path."
    scores = scorer.score(query, chunks)
    assert scores.shape == (3,) and int(np.argmax(scores)) == 1
    again = scorer.score(query, chunks)  # served from the cache
    assert np.allclose(scores, again)


def test_lm_scoring_compressor_on_a_small_file() -> None:
    comp = CodeCompressor(scoring="blend", lm_top=4, max_chunk_tokens=96, tokenizer="words")
    doc = Document((FIXTURES / "Stack.java").read_text(encoding="utf-8"), id="stack",
                   metadata={"path": "Stack.java"})  # fmt: skip
    result = comp.compress("Remove and return the top item of the stack.", [doc], Budget(ratio=2))
    assert "public T pop() {" in result.text()
    assert result.tokens_after <= Budget(ratio=2).limit(result.tokens_before)


def test_knapsack_respects_capacity_and_is_optimal() -> None:
    values = np.array([6.0, 10.0, 12.0])
    weights = np.array([1, 2, 3])
    assert knapsack(values, weights, 5) == [1, 2]
    rng = np.random.default_rng(0)
    for _ in range(20):
        w = rng.integers(1, 50, size=8)
        v = rng.random(8)
        cap = int(rng.integers(0, 150))
        picked = knapsack(v, w, cap)
        assert int(w[picked].sum()) <= cap
        best = max(  # brute force
            (sum(v[k] for k in range(8) if m >> k & 1) for m in range(256)
             if sum(w[k] for k in range(8) if m >> k & 1) <= cap),
        )  # fmt: skip
        assert float(v[picked].sum()) == pytest.approx(best)
    big = knapsack(np.ones(4), np.array([3000, 3000, 3000, 3000]), 10_000)
    assert len(big) == 3  # rescaled capacity still fits


def test_perplexity_block_boundaries_split_a_body_without_blank_lines() -> None:
    comp = CodeCompressor(scoring="bi", block_split="perplexity", max_block_lines=50)
    src = (
        "def report(rows):\n"
        "    total = 0\n"
        "    for row in rows:\n"
        "        total += row.amount\n"
        "    path = os.path.join(tempfile.gettempdir(), 'report.csv')\n"
        "    with open(path, 'w') as handle:\n"
        "        handle.write(f'total,{total}\\n')\n"
        "    send_mail('boss@example.com', subject='Report', attachment=path)\n"
        "    return total\n"
    )
    doc = comp._prepare(src, {"language": "python"})
    chunk = next(c for c in doc.chunks if c.is_definition)
    _, plain = comp._blocks(doc, chunk)
    _, split = comp._blocks(doc, chunk, split_lm=True)
    assert len(plain) == 1 and len(split) > 1  # the LM found boundaries the blank lines do not
    nll = comp.scorer.lm.line_surprisal(doc.lines[chunk.start : chunk.end])
    assert nll.shape == (chunk.end - chunk.start,) and np.isfinite(nll).all()
    assert comp.params()["block_split"] == "perplexity"
    assert CodeCompressor(scoring="bi").params()["block_split"] == "lines"
