"""The study's prompt templates, rendered exactly as each model will see them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from safescale.data.question import Question

SYSTEM_PROMPT = (
    "You are an expert medical assistant specialised in radiology. Answer the "
    "multiple-choice question with only the letter of the correct option."
)

# One worked example for completion-style (base) models, outside medicine so it
# teaches the answer format without leaking domain content. Its letter is
# fixed; note it in reports as a possible positional prior.
COMPLETION_EXAMPLE = (
    "Question: Which planet is closest to the Sun?\n"
    "Options:\nA. Venus\nB. Earth\nC. Mercury\nD. Mars\n"
    "Answer: C\n\n"
)


def format_question(q: Question) -> str:
    options = "\n".join(f"{letter}. {text}" for letter, text in q.options.items())
    return f"Question: {q.question}\nOptions:\n{options}\nAnswer:"


CONTEXT_HEADER = "Context:\n"


def context_block(context: str | None) -> str:
    """The evidence block put before the question ('' without context)."""
    return f"{CONTEXT_HEADER}{context.strip()}\n\n" if context else ""


def context_in_prompt(prompt: str, q: Question) -> str | None:
    """The context a rendered prompt showed before `q` (None when it showed none): the
    inverse of `context_block`, for reviewers reading prompt records."""
    end = prompt.rfind(format_question(q))
    if end < 0:
        raise ValueError(f"the prompt does not contain question {q.question_id} as formatted")
    start = prompt.find(CONTEXT_HEADER, 0, end)
    if start < 0:
        return None
    return prompt[start + len(CONTEXT_HEADER) : end].rstrip("\n")


def evidence_entry_offsets(prompt: str, q: Question) -> list[int]:
    """Where, in a rendered prompt, each numbered evidence entry after the first and
    then the question start (character offsets; [] without numbered evidence).

    Two prompts of one question whose ranked evidence agrees on its first k
    entries (top-k RAG and max-context) are identical up to the (k+1)-th offset
    of the longer one; the engine splits every prompt there so the shorter
    one's evidence is evaluated once (LlamaEngine.prime).
    """
    first = prompt.find(f"{CONTEXT_HEADER}[1] ")
    end = prompt.rfind(format_question(q))
    if first < 0 or end < first:
        return []
    offsets, i, pos = [], 2, first
    while (pos := prompt.find(f"\n\n[{i}] ", pos, end)) >= 0:
        pos += 2
        offsets.append(pos)
        i += 1
    return [*offsets, end]


def user_message(q: Question, context: str | None) -> str:
    return context_block(context) + format_question(q)


def messages_for(q: Question, context: str | None) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_message(q, context)},
    ]


def completion_prompt(q: Question, context: str | None) -> str:
    """Base models: instruction, one example, optional context, then the question."""
    return f"{SYSTEM_PROMPT}\n\n{COMPLETION_EXAMPLE}{context_block(context)}{format_question(q)}"


_SENTINEL = "\x00HEAD\x00"


@dataclass
class Renderer:
    """Turns messages into the exact prompt string of one model, and counts its tokens.

    Uses the GGUF's own chat template (Jinja) for chat models; llama-cpp-python's
    silent fallback to the Llama-2 format is never used: a chat model without a
    template is an error, and base models use `completion_prompt`.
    """

    prompt_style: str
    llama: Any  # llama_cpp.Llama, loaded with vocab_only=True is enough

    def __post_init__(self) -> None:
        self._formatter = None
        if self.prompt_style == "chat":
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            template = self.llama.metadata.get("tokenizer.chat_template")
            if not template:
                raise ValueError(
                    "model has no chat template in its GGUF metadata; register it with "
                    "prompt_style: completion"
                )
            vocab = self.llama._model
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=vocab.token_get_text(self.llama.token_eos()),
                bos_token=vocab.token_get_text(self.llama.token_bos()),
                add_generation_prompt=True,
            )

    def render(self, q: Question, context: str | None) -> str:
        if self._formatter is None:
            return completion_prompt(q, context)
        return self.render_messages(messages_for(q, context))

    def render_messages(self, messages: list[dict[str, str]]) -> str:
        if self._formatter is None:
            return "\n\n".join(m["content"] for m in messages)
        return self._formatter(messages=messages).prompt  # type: ignore[arg-type]

    def head(self) -> str:
        """The text every prompt of this model starts with: the instruction (and the
        worked example, for base models) up to where the user's content begins."""
        if self._formatter is None:
            return f"{SYSTEM_PROMPT}\n\n{COMPLETION_EXAMPLE}"
        return self.opening([{"role": "system", "content": SYSTEM_PROMPT}])

    def opening(self, messages: list[dict[str, str]]) -> str:
        """The text every conversation that starts with `messages` and goes on with a
        user turn begins with, up to where that turn's content starts."""
        rendered = self.render_messages([*messages, {"role": "user", "content": _SENTINEL}])
        return rendered.split(_SENTINEL)[0]

    def tokenize(self, text: str) -> list[int]:
        return tokenize(self.llama, text)

    def count(self, text: str) -> int:
        return len(self.tokenize(text))


def tokenize(llama: Any, text: str) -> list[int]:
    """Tokens of a rendered prompt: special tokens parsed, one BOS if the model uses it."""
    tokens = llama.tokenize(text.encode("utf-8"), add_bos=True, special=True)
    bos = llama.token_bos()
    if len(tokens) >= 2 and tokens[0] == bos and tokens[1] == bos:
        tokens = tokens[1:]
    return tokens
