"""The abstractive compressor's parts that need no model: guard, output parsing, cache."""

from __future__ import annotations

from pathlib import Path

from ragzip.compressors.abstractive.cache import SummaryCache, file_cache, summary_key
from ragzip.compressors.abstractive.guard import (
    SourceSentence,
    content_terms,
    guard,
    support,
)
from ragzip.compressors.abstractive.parsing import clean_summary, is_sentinel
from ragzip.text import segment

NOTE = "The council approved the new park budget of 2 million. The meeting ended at 9 pm."


def sources(text: str = NOTE) -> list[SourceSentence]:
    return [SourceSentence(text[s.start : s.end], 0, s.start, s.end) for s in segment(text)]


# -- guard -------------------------------------------------------------------------------------
def test_guard_replaces_a_reversed_vote_and_drops_an_invented_amount() -> None:
    summary = ["The council rejected the park budget.", "It was 5 million."]
    report = guard(summary, sources(), None)
    texts = [s.text for s in report.sentences]
    # The reversed vote is replaced by the source sentence it garbled; the invented amount
    # has the same best source, already present, so it is dropped.
    assert texts == ["The council approved the new park budget of 2 million."]
    assert report.sentences[0].replaced and report.sentences[0].source == 0
    assert report.counts() == {"checked": 2, "dropped": 1, "replaced": 1}
    joined = " ".join(texts)
    assert "rejected" not in joined and "5 million" not in joined


def test_guard_drop_action_never_adds_source_text() -> None:
    report = guard(["The council rejected the park budget."], sources(), None, action="drop")
    assert report.sentences == () and report.counts()["dropped"] == 1


def test_guard_keeps_supported_paraphrases() -> None:
    summary = [
        "The council approved the park budget of 2 million.",
        "The park budget of 2 million was approved by the council.",
        "The meeting ended at 9 pm.",
    ]
    report = guard(summary, sources(), None)
    assert [s.text for s in report.sentences] == summary
    assert report.counts() == {"checked": 3, "dropped": 0, "replaced": 0}
    assert all(s.support >= 0.6 and not s.replaced for s in report.sentences)


def test_guard_off_keeps_everything_and_checks_nothing() -> None:
    summary = ["The council rejected the park budget.", "It was 5 million."]
    report = guard(summary, sources(), None, enabled=False)
    assert [s.text for s in report.sentences] == summary
    assert report.counts() == {"checked": 0, "dropped": 0, "replaced": 0}


def test_numbers_negations_and_antonyms_must_match() -> None:
    source = "The council approved the new park budget of 2 million."
    assert support("The council approved a budget of 2 million.", source) > 0.5
    assert support("The council approved a budget of 5 million.", source, cosine=0.99) == 0.0
    assert support("The council did not approve the park budget.", source, cosine=0.99) == 0.0
    assert support("The council rejected the park budget.", source, cosine=0.99) == 0.0
    assert support("Revenue increased by 3%.", "Revenue decreased by 3%.", cosine=0.99) == 0.0
    terms = content_terms("Alexander Fleming discovered penicillin in 1,928.")
    assert terms.numbers == {"1928"} and not terms.negated
    assert content_terms("Fleming discovers penicillin.").words <= terms.words  # same stems
    assert max(terms.weights.values()) == 2.0  # names and numbers weigh double


def test_guard_with_no_sources_drops_everything() -> None:
    report = guard(["Anything at all."], [], None)
    assert report.sentences == () and report.counts()["dropped"] == 1


# -- parsing -----------------------------------------------------------------------------------
def test_clean_summary_strips_chat_artefacts_prefixes_and_bullets() -> None:
    raw = (
        "<|im_start|>assistant\n**Summary:** \n- The council approved the budget\n"
        "* It was 2 million.<|im_end|>"
    )
    assert clean_summary(raw) == "The council approved the budget. It was 2 million."
    assert clean_summary("Here is a short summary of the facts: Paris is big.") == "Paris is big."
    assert clean_summary('"Fleming found penicillin."') == "Fleming found penicillin."
    assert clean_summary("1. One fact.\n2. Another fact.") == "One fact. Another fact."


def test_sentinel_detection_is_case_insensitive_and_strict() -> None:
    said_none = ["NONE", "none.", "None", "**NONE**", '"none"', "", "NONE - nothing helps"]
    said_none += ["No relevant information.", "The documents do not contain the answer."]
    for text in said_none:
        assert is_sentinel(clean_summary(text)), text
    for text in ("None of them objected.", "Nonetheless it passed.", "The budget passed."):
        assert not is_sentinel(clean_summary(text)), text
    assert is_sentinel("IRRELEVANT", sentinel="irrelevant")


# -- cache -------------------------------------------------------------------------------------
def test_summary_key_depends_on_every_part() -> None:
    base = summary_key(model="m", query="q", documents=["a", "b"], max_tokens=32)
    assert base == summary_key(max_tokens=32, documents=["a", "b"], query="q", model="m")
    assert base != summary_key(model="m2", query="q", documents=["a", "b"], max_tokens=32)
    assert base != summary_key(model="m", query="q", documents=["b", "a"], max_tokens=32)
    assert base != summary_key(model="m", query="q", documents=["a", "b"], max_tokens=64)
    assert len(base) == 64


def test_cache_counts_hits_and_evicts_least_recent() -> None:
    cache = SummaryCache(max_items=2)
    assert cache.get("a") is None and cache.misses == 1
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A" and cache.hits == 1
    cache.put("c", "C")  # evicts b, the least recently used
    assert cache.get("b") is None and cache.get("a") == "A" and cache.get("c") == "C"
    assert len(cache) == 2


def test_file_cache_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "summaries.jsonl"
    first = SummaryCache(path=path)
    first.put("k", "a summary")
    path.write_text(path.read_text() + '{"truncated line\n', encoding="utf-8")
    assert SummaryCache(path=path).get("k") == "a summary"
    assert file_cache(path) is file_cache(str(path))
