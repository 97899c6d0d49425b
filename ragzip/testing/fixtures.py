"""Small shipped texts for contract and behaviour tests, so no external data is needed.

Six short documents on distinct topics, each with a title, and one question per document
whose answer (a short phrase) occurs in exactly one sentence of exactly one document.

Example:
    >>> from ragzip.testing.fixtures import DOCUMENTS, QUESTIONS
    >>> q = QUESTIONS[0]
    >>> q.question, q.document_id, q.answer
    ('Who discovered penicillin?', 'penicillin', 'Alexander Fleming')
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ragzip.types import Document

__all__ = [
    "DOCUMENTS",
    "INVALID_UTF8",
    "QUESTIONS",
    "UNICODE_TEXTS",
    "FixtureQuestion",
    "document",
    "large_document",
    "unique_text",
]


@dataclass(frozen=True)
class FixtureQuestion:
    """A question, the id of the only document that answers it, and the answer phrase."""

    question: str
    document_id: str
    answer: str


DOCUMENTS: tuple[Document, ...] = (
    Document(
        "Penicillin was the first widely used antibiotic. Alexander Fleming discovered "
        "penicillin in 1928 when he noticed that a mould had killed the bacteria in one of his "
        "culture dishes. Dr. Howard Florey and Ernst Chain later worked out how to purify it. "
        "Mass production began during the Second World War, when it saved thousands of wounded "
        "soldiers. Today many bacteria have become resistant to it.",
        id="penicillin",
        metadata={"title": "Penicillin", "source": "medicine.txt", "tags": ["history", "drugs"]},
    ),
    Document(
        "Honeybees live in colonies ruled by a single queen. A forager that finds flowers "
        "returns to the hive and performs a waggle dance, whose angle and length tell the other "
        "bees the direction and distance of the food. Worker bees make honey from nectar and "
        "store it in wax combs. A strong colony can hold about 50,000 bees in summer.",
        id="honeybees",
        metadata={"title": "Honeybees", "source": "insects.txt", "tags": ["biology"]},
    ),
    Document(
        "Johannes Gutenberg built his printing press in Mainz around 1440. It used movable "
        "metal type, an oil-based ink and a screw press adapted from wine making. The Gutenberg "
        "Bible, printed in the 1450s, was one of the first books made this way. Within fifty "
        "years printing shops had spread to more than 200 European cities.",
        id="printing",
        metadata={"title": "Printing press", "source": "history.txt", "tags": ["history"]},
    ),
    Document(
        "Mount Kilimanjaro is a dormant volcano in Tanzania. Its highest summit, Uhuru Peak, "
        "rises 5,895 metres above sea level, which makes it the tallest mountain in Africa. "
        "Climbers pass through rainforest, moorland and alpine desert on the way up. The "
        "glaciers near the top have shrunk by more than 80% since 1912.",
        id="kilimanjaro",
        metadata={"title": "Mount Kilimanjaro", "source": "geography.txt"},
    ),
    Document(
        "Jazz grew out of blues and ragtime at the start of the twentieth century. It was born "
        "in New Orleans, where brass bands, church music and African rhythms met. Louis "
        "Armstrong made improvised solos the centre of the music. Later styles such as bebop "
        "and cool jazz moved the genre towards faster harmony and smaller groups.",
        id="jazz",
        metadata={"title": "Jazz", "source": "music.txt", "tags": ["music", "history"]},
    ),
    Document(
        "The Great Barrier Reef stretches for about 2,300 kilometres off the coast of "
        "Queensland, Australia. It is built by billions of tiny coral polyps. Rising sea "
        "temperatures cause coral bleaching, the main threat to the reef's survival. The reef "
        "is home to thousands of species of fish, turtles and sharks.",
        id="reef",
        metadata={"title": "Great Barrier Reef", "source": "oceans.txt"},
    ),
)

QUESTIONS: tuple[FixtureQuestion, ...] = (
    FixtureQuestion("Who discovered penicillin?", "penicillin", "Alexander Fleming"),
    FixtureQuestion(
        "How do honeybees tell each other where to find food?", "honeybees", "waggle dance"
    ),
    FixtureQuestion("When did Gutenberg build his printing press?", "printing", "around 1440"),
    FixtureQuestion("How high is Mount Kilimanjaro?", "kilimanjaro", "5,895 metres"),
    FixtureQuestion("In which city was jazz born?", "jazz", "New Orleans"),
    FixtureQuestion(
        "What is the biggest threat to the corals of the Great Barrier Reef?",
        "reef",
        "coral bleaching",
    ),
)

#: UTF-8 with invalid sequences (a lone continuation byte, a truncated sequence, 0xff 0xfe, an
#: overlong encoding); decode it with :func:`ragzip.text.decode_text`.
INVALID_UTF8: bytes = (
    b"Caf\xc3\xa9 r\xc3\xa9sum\xc3\xa9 \x80 na\xefve text. Broken \xe2\x82 euro sign. "
    b"Bytes \xff\xfe here and an overlong slash \xc0\xaf too. The answer is 42.\n\n"
    b"Second paragraph \xed\xa0\x80 with a UTF-16 surrogate encoded as UTF-8."
)

#: Texts that stress tokenizers and segmenters: scripts without spaces, right-to-left text,
#: combining marks, emoji, zero-width and control characters.
UNICODE_TEXTS: tuple[str, ...] = (
    "東京は日本の首都です。人口は約1400万人です。富士山は日本で一番高い山です。",
    "القاهرة هي عاصمة مصر. يمر نهر النيل عبر المدينة.",
    "Ünïcödé cömbïnïng: e\u0301 a\u0308 o\u0302. Emoji 🚀🔥👩\u200d💻 and flags 🇫🇷.",
    "Zero\u200bwidth\u200cjoiners\u200d and a BOM \ufeff here. Tabs\tand\x00NUL\x07bell.",
    "Математика — царица наук. Ελληνικά γράμματα: α, β, γ.",
)


def document(doc_id: str) -> Document:
    """The fixture document with id ``doc_id``."""
    for doc in DOCUMENTS:
        if doc.id == doc_id:
            return doc
    raise KeyError(doc_id)


def large_document(chars: int = 5_000_000, *, doc_id: str = "large") -> Document:
    """A document of about ``chars`` characters made of the fixture paragraphs, repeated.

    The repetition is realistic for scraped pages (boilerplate) and keeps model-based
    compressors fast, since embeddings are cached by content; see :func:`unique_text` for text
    without repeats.
    """
    paragraphs = [d.text for d in DOCUMENTS]
    parts: list[str] = []
    size = 0
    i = 0
    while size < chars:
        text = paragraphs[i % len(paragraphs)]
        parts.append(text)
        size += len(text) + 2
        i += 1
    return Document("\n\n".join(parts), id=doc_id, metadata={"title": "Large document"})


def unique_text(chars: int, seed: int = 0) -> str:
    """About ``chars`` characters of pseudo-random sentences that do not repeat (deterministic)."""
    rng = random.Random(seed)
    vocabulary = sorted({w.strip(".,%").lower() for d in DOCUMENTS for w in d.text.split()})
    sentences: list[str] = []
    size = 0
    while size < chars:
        words = [rng.choice(vocabulary) for _ in range(rng.randint(6, 24))]
        sentence = " ".join(words).capitalize() + "."
        sentences.append(sentence)
        size += len(sentence) + 1
        if rng.random() < 0.1:
            sentences.append("\n\n")
    return " ".join(sentences)
