"""Generators: the LLM at the end of the pipeline, local (transformers) or remote (HTTP).

Every generator maps chat messages (or a prompt string) to a :class:`Generation`, streams text
deltas, and has async twins (see :class:`~ragzip.generators.base.Generator`). Importing this
package does not import torch; the local model loads on first use.

Example:
    >>> from ragzip.generators import TransformersGenerator, OpenAICompatibleGenerator
    >>> local = TransformersGenerator("smollm2-135m")
    >>> local.generate("What is the capital of France?", max_tokens=16).text
    >>> remote = OpenAICompatibleGenerator("http://localhost:8000/v1", "smollm2-135m")
    >>> for delta in remote.stream([{"role": "user", "content": "Hi"}]):
    ...     print(delta, end="")
"""

from ragzip.generators.base import (
    BaseGenerator,
    Generation,
    GenerationRequest,
    Generator,
    Message,
    MessagesLike,
    StopFilter,
    normalize_messages,
    truncate_at_stop,
)
from ragzip.generators.local import TransformersGenerator
from ragzip.generators.openai_compat import OpenAICompatibleGenerator
from ragzip.generators.registry import generators
from ragzip.generators.serve_openai import make_server, running_server

__all__ = [
    "BaseGenerator",
    "Generation",
    "GenerationRequest",
    "Generator",
    "Message",
    "MessagesLike",
    "OpenAICompatibleGenerator",
    "StopFilter",
    "TransformersGenerator",
    "generators",
    "make_server",
    "normalize_messages",
    "running_server",
    "truncate_at_stop",
]
