"""The strong baseline a user would pick: llama-cpp-python's own API with its prefix reuse.

n `create_completion` calls on one `Llama`, one after the other, with no `reset()`
between them: llama-cpp-python finds the whole prompt in its KV cache, replays its
last token to refresh the logits and decodes from there. So the prompt is
evaluated once per question, as in our engine; what remains to compare is the
decoding. `is_final` adds the early stop a user would write: stream the completion
and stop reading once the parsed letter can no longer change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from safescale.inference.llama_engine import Decoding
from safescale.perf.timing import Timing, now, since

STRONG_BASELINE = (
    "n llm.create_completion(prompt_tokens, temperature=T, top_k=0, top_p=1.0, min_p=0.0, "
    "repeat_penalty=1.0, max_tokens=sample_max_tokens, seed=s) calls on the same Llama, "
    "one llm.reset() before the first and none between them: llama-cpp-python reuses the "
    "cached prompt (replaying its last token) so the prompt is evaluated once"
)
STRONG_STOP_BASELINE = (
    "the same calls with stream=True, closed as soon as parsing.letter_is_final(text) holds "
    "(the token that decides the letter is never evaluated; a StoppingCriteria would "
    "evaluate it, one step more per sample)"
)


def _completion_kwargs(decoding: Decoding, seed: int) -> dict[str, Any]:
    """The engine's sampling settings, spelled for create_completion (no library defaults)."""
    s = decoding.sampling
    return {
        "temperature": s.temperature,
        "top_k": s.top_k,
        "top_p": s.top_p,
        "min_p": s.min_p,
        "typical_p": 1.0,
        "repeat_penalty": 1.0,
        "max_tokens": decoding.sample_max_tokens,
        "seed": seed % 2**32,
    }


def _streamed(llm: Any, tokens: list[int], kwargs: dict, is_final: Callable[[str], bool]) -> str:
    """Read a streamed completion until its text is final; closing it stops the decoding."""
    text = ""
    stream = llm.create_completion(tokens, stream=True, **kwargs)
    try:
        for chunk in stream:
            text += chunk["choices"][0]["text"]
            if is_final(text):
                break
    finally:
        stream.close()
    return text


def strong_self_consistency(
    llm: Any,
    tokens: Sequence[int],
    seeds: Sequence[int],
    decoding: Decoding,
    is_final: Callable[[str], bool] | None = None,
) -> tuple[Timing, int, list[str]]:
    """Time, evaluated tokens past the prompt, and texts of n prefix-reusing sampling calls.

    Evaluations are counted at `llm.eval` (every decoded token and every replayed prompt
    token), so they are what llama.cpp computed, not what the caller read.
    """
    tokens = list(tokens)
    texts: list[str] = []
    evaluated = [0]
    plain_eval = llm.eval

    def counting_eval(batch: Sequence[int]) -> None:
        evaluated[0] += len(batch)
        plain_eval(batch)

    llm.reset()  # the prompt is evaluated once, by the first call, as `prime` does
    llm.eval = counting_eval
    try:
        t0 = now()
        for seed in seeds:
            kwargs = _completion_kwargs(decoding, seed)
            if is_final is None:
                texts.append(llm.create_completion(tokens, **kwargs)["choices"][0]["text"])
            else:
                texts.append(_streamed(llm, tokens, kwargs, is_final))
        spent = since(t0)
    finally:
        del llm.eval  # the instance attribute; the class method shows through again
        llm.reset()
    return spent, evaluated[0] - len(tokens), texts


def strong_greedy(llm: Any, tokens: Sequence[int], max_tokens: int) -> str:
    """The greedy answer through create_completion (temperature 0), for parity checks."""
    out = llm.create_completion(
        list(tokens), temperature=0.0, repeat_penalty=1.0, max_tokens=max_tokens
    )
    return str(out["choices"][0]["text"])
