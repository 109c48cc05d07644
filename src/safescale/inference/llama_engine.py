"""In-process llama.cpp engine: one prompt evaluation serves the letter
probabilities, the greedy answer and every self-consistency sample.

Self-consistency by prefix tree: after one forward pass the next-token
distribution is known, so each of the n samples draws its next token from it
(its own seeded stream) and only distinct prefixes are decoded further. Each
sample still follows exactly the conditional distribution of independent
sampling; shared prefixes are simply not recomputed.
"""

from __future__ import annotations

import ctypes
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from safescale.conditions import LETTERS
from safescale.inference.parsing import letter_of_token
from safescale.inference.sampling import SamplingSettings, draw, softmax, token_distribution
from safescale.prompting.templates import Renderer, tokenize


@dataclass(frozen=True)
class Decoding:
    greedy_max_tokens: int = 10
    n_samples: int = 20
    sample_max_tokens: int = 10
    sampling: SamplingSettings = field(default_factory=SamplingSettings)


@dataclass
class Generation:
    tokens: list[int]
    raw: str


@dataclass
class EngineStats:
    """Counters for the benchmark: tokens actually evaluated vs requested."""

    prompt_tokens_evaluated: int = 0
    decode_steps: int = 0
    seconds_prompt: float = 0.0
    seconds_decode: float = 0.0


class LlamaEngine:
    def __init__(
        self,
        model_path: str | Path,
        n_ctx: int,
        threads: int = 1,
        n_batch: int = 512,
        n_gpu_layers: int = 0,
    ):
        from llama_cpp import Llama

        self.llm = Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=n_batch,
            n_gpu_layers=n_gpu_layers,
            logits_all=False,
            verbose=False,
            seed=0,
        )
        self.n_vocab = self.llm.n_vocab()
        self.n_ctx = n_ctx
        self.stats = EngineStats()
        self._letter_ids = self._letter_tokens()
        # The prompt whose tokens the cache holds at positions 0.., and the splits it
        # was evaluated at (prime): the only state a later prompt may reuse.
        self._held: tuple[int, ...] = ()
        self._held_splits: tuple[int, ...] = ()

    # --- low-level --------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        return tokenize(self.llm, text)

    def token_text(self, token: int) -> str:
        """The text of one token as it reads after other tokens (leading space kept)."""
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(self.llm._model.model)
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
        return buf.raw[: max(n, 0)].decode("utf-8", errors="replace")

    def _letter_tokens(self) -> dict[str, list[int]]:
        """Every token that spells each letter as a first token (parsing.letter_of_token)."""
        ids: dict[str, list[int]] = {letter: [] for letter in LETTERS}
        for token in range(self.n_vocab):
            letter = letter_of_token(self.token_text(token), LETTERS)
            if letter is not None:
                ids[letter].append(token)
        return ids

    def _is_stop(self, token: int) -> bool:
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(self.llm._model.model)
        return bool(llama_cpp.llama_vocab_is_eog(vocab, token)) or token == self.llm.token_eos()

    def _logits(self) -> np.ndarray:
        import llama_cpp

        ptr = llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        arr = np.ctypeslib.as_array(
            ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,)
        )
        return arr.copy()

    def _eval_at(self, position: int, tokens: list[int]) -> np.ndarray:
        """Evaluate tokens after the first `position` cached tokens; return last logits."""
        self.llm.n_tokens = position
        self.llm.eval(tokens)
        return self._logits()

    def prime(self, tokens: list[int], splits: Sequence[int] = ()) -> np.ndarray:
        """Evaluate a prompt and return the next-token logits.

        Logits depend (in the last bits) on how tokens were batched, so reusing
        whatever another prompt left in the cache would make a question's samples
        depend on which question ran before it, and a resumed run would differ
        from an uninterrupted one. Reuse is allowed only at fixed splits that
        depend on the prompt alone (`prompt_splits`: the end of the template head,
        the start of each numbered evidence entry after the first, the start of
        the question): the prompt is always evaluated as one batch per piece
        between splits, and a prompt that shares its tokens up to a split, and
        the same splits before it, with the prompt held in the cache evaluates
        only the pieces after that split. The KV entries of a piece depend only on
        the tokens up to its end and on the pieces before it, so the logits do not
        depend on order or resumption. Within one prompt this single evaluation
        serves the greedy answer, the letter probabilities and every sample.
        """
        if len(tokens) + 1 > self.n_ctx:
            raise ValueError(f"prompt of {len(tokens)} tokens does not fit n_ctx={self.n_ctx}")
        cuts = sorted({s for s in splits if 0 < s < len(tokens)})
        start = 0
        for s in reversed(cuts):
            if (
                s <= len(self._held)
                and self._held[:s] == tuple(tokens[:s])
                and [x for x in self._held_splits if x <= s] == [x for x in cuts if x <= s]
            ):
                start = s
                break
        # until every piece is in, only what precedes `start` is known to hold
        self._held = tuple(tokens[:start])
        self._held_splits = tuple(x for x in cuts if x <= start)
        t0 = time.perf_counter()
        bounds = [start, *(s for s in cuts if s > start), len(tokens)]
        for a, b in itertools.pairwise(bounds):
            logits = self._eval_at(a, tokens[a:b])
        self.stats.seconds_prompt += time.perf_counter() - t0
        self.stats.prompt_tokens_evaluated += len(tokens) - start
        self._held, self._held_splits = tuple(tokens), tuple(cuts)
        return logits

    def extend(self, tokens: list[int], keep: int) -> np.ndarray:
        """Evaluate `tokens` reusing the first `keep` positions of the KV cache.

        Only for a prompt that continues the conversation whose tokens (prompt and
        reply) this engine evaluated last, within one question: the split then
        depends on that question alone, so its logits are the same in every run
        (ChatGenerator checks this).
        """
        if len(tokens) + 1 > self.n_ctx:
            raise ValueError(f"prompt of {len(tokens)} tokens does not fit n_ctx={self.n_ctx}")
        if not 0 <= keep < len(tokens) or keep > self.llm.n_tokens:
            raise ValueError(f"cannot keep {keep} cached tokens of a {len(tokens)}-token prompt")
        # positions from `keep` on are overwritten: splits after it no longer hold
        self._held_splits = tuple(x for x in self._held_splits if x <= keep)
        self._held = tuple(tokens[:keep])
        t0 = time.perf_counter()
        logits = self._eval_at(keep, tokens[keep:])
        self.stats.seconds_prompt += time.perf_counter() - t0
        self.stats.prompt_tokens_evaluated += len(tokens) - keep
        self._held = tuple(tokens)
        return logits

    def cached_tokens(self) -> list[int]:
        """The tokens whose keys and values the cache holds now, in order."""
        return [int(t) for t in self.llm.input_ids[: self.llm.n_tokens]]

    def _detok(self, tokens: list[int]) -> str:
        return self.llm.detokenize(tokens).decode("utf-8", errors="replace")

    # --- decoding ---------------------------------------------------------
    def letter_probabilities(
        self, logits: np.ndarray, letters: tuple[str, ...]
    ) -> tuple[dict[str, float], float]:
        """Exact first-token probability of each letter, renormalised; and their raw mass.

        A letter's probability sums every token that spells it ("B", " B", "(B"...).
        """
        p = softmax(logits)
        mass = {letter: float(p[self._letter_ids[letter]].sum()) for letter in letters}
        total = sum(mass.values())
        if total <= 0:
            return {letter: 0.0 for letter in letters}, 0.0
        return {k: v / total for k, v in mass.items()}, total

    def greedy(
        self,
        prompt_len: int,
        logits: np.ndarray,
        max_tokens: int,
        is_final: Callable[[str], bool] | None = None,
        evaluated: dict[tuple[int, ...], np.ndarray] | None = None,
    ) -> Generation:
        """Greedy decoding until a stop token, max_tokens, or `is_final(text)` (see sample_tree).

        `evaluated` collects the logits after each decoded path, so sample_tree does not
        evaluate the same token at the same position again (a decode step costs as much
        as about eight prompt tokens on a CPU)."""
        tokens: list[int] = []
        t0 = time.perf_counter()
        for step in range(max_tokens):
            tok = int(np.argmax(logits))
            if self._is_stop(tok):
                break
            tokens.append(tok)
            if is_final is not None and is_final(self._detok(tokens)):
                break
            if step + 1 < max_tokens:
                logits = self._eval_at(prompt_len + len(tokens) - 1, [tok])
                self.stats.decode_steps += 1
                if evaluated is not None:
                    evaluated[tuple(tokens)] = logits
        self.stats.seconds_decode += time.perf_counter() - t0
        return Generation(tokens, self._detok(tokens))

    def sample_tree(
        self,
        prompt_len: int,
        logits: np.ndarray,
        seeds: list[int],
        max_tokens: int,
        settings: SamplingSettings,
        is_final: Callable[[str], bool] | None = None,
        evaluated: Mapping[tuple[int, ...], np.ndarray] | None = None,
    ) -> list[Generation]:
        """Decode each sample until a stop token, max_tokens, or `is_final(text)`.

        `is_final` lets a branch stop once its parsed letter can no longer change
        (see parsing.letter_is_final); the parsed letters are then identical to
        full decoding, only the recorded raw text is shorter. `evaluated`: logits of
        paths the greedy answer already decoded from the same prompt (the same token at
        the same position after the same cache: identical logits, no evaluation).
        """
        known = evaluated or {}
        rngs = [np.random.default_rng(s) for s in seeds]
        finished: dict[int, list[int]] = {}
        t0 = time.perf_counter()

        def expand(node_logits: np.ndarray, members: list[int], prefix: list[int]) -> None:
            p = token_distribution(node_logits, settings)
            children: dict[int, list[int]] = {}
            for i in members:
                children.setdefault(draw(p, rngs[i]), []).append(i)
            # The greedy path first: the cache still holds it, so its known logits are valid.
            for tok in sorted(children, key=lambda t: ((*prefix, t) not in known, t)):
                group = children[tok]
                if self._is_stop(tok):
                    finished.update({i: prefix for i in group})
                    continue
                path = [*prefix, tok]
                if len(path) >= max_tokens or (is_final and is_final(self._detok(path))):
                    finished.update({i: path for i in group})
                    continue
                child_logits = known.get(tuple(path))
                if child_logits is None:
                    child_logits = self._eval_at(prompt_len + len(prefix), [tok])
                    self.stats.decode_steps += 1
                expand(child_logits, group, path)

        if seeds:
            expand(logits, list(range(len(seeds))), [])
        self.stats.seconds_decode += time.perf_counter() - t0
        return [Generation(finished[i], self._detok(finished[i])) for i in range(len(seeds))]

    def answer(
        self,
        prompt_tokens: list[int],
        letters: tuple[str, ...],
        decoding: Decoding,
        sample_seeds: list[int],
        is_final: Callable[[str], bool] | None = None,
        splits: Sequence[int] = (),
    ) -> dict:
        """Everything the study records for one prompt, from one prompt evaluation."""
        t0 = time.perf_counter()
        logits = self.prime(prompt_tokens, splits)
        evaluated: dict[tuple[int, ...], np.ndarray] = {}
        greedy = self.greedy(
            len(prompt_tokens), logits, decoding.greedy_max_tokens, is_final, evaluated
        )
        latency = time.perf_counter() - t0
        probs, mass = self.letter_probabilities(logits, letters)
        samples = self.sample_tree(
            len(prompt_tokens),
            logits,
            sample_seeds,
            decoding.sample_max_tokens,
            decoding.sampling,
            is_final,
            evaluated,
        )
        return {
            "greedy": greedy,
            "samples": samples,
            "letter_probs": probs,
            "letter_mass": mass,
            "latency_s": latency,
        }

    def generate_text(self, prompt: str, max_tokens: int) -> str:
        """Greedy free text (the agent's planning calls)."""
        tokens = self.tokenize(prompt)
        budget = max(1, min(max_tokens, self.n_ctx - len(tokens) - 1))
        logits = self.prime(tokens)
        return self.greedy(len(tokens), logits, budget).raw


def head_length(head: list[int], tokens: list[int]) -> int:
    """How many leading tokens of a prompt are its template head (fewer if the
    tokenizer merged across the boundary); always leaves at least one token."""
    n = 0
    for a, b in zip(head, tokens[:-1], strict=False):
        if a != b:
            break
        n += 1
    return n


class ChatGenerator:
    """Greedy chat replies from one model, in its own chat template.

    With `reuse_prefix`, a prompt that starts with the whole previous prompt (the
    same conversation, one turn further) evaluates only what follows the tokens
    already cached; `reset` starts a new conversation. The only thing reused
    across conversations is `opening`, the text every conversation starts with
    (the agent's instruction and worked example), at a fixed split
    (LlamaEngine.prime). `is_final(reply)` stops decoding
    early once a reply is complete. `usage` counts prompt tokens submitted and
    evaluated and reply tokens decoded.
    """

    def __init__(
        self,
        engine: LlamaEngine,
        renderer: Renderer,
        *,
        reuse_prefix: bool = False,
        is_final: Callable[[str], bool] | None = None,
        opening: str | None = None,
    ):
        self.engine = engine
        self.renderer = renderer
        self.reuse_prefix = reuse_prefix
        self.is_final = is_final
        self._opening = engine.tokenize(opening) if opening else []
        self._prompt: list[int] = []
        self._usage = {"prompt_tokens": 0, "prompt_tokens_evaluated": 0, "decode_tokens": 0}

    def reset(self) -> None:
        """Start a new conversation: the next prompt is evaluated from position 0."""
        self._prompt = []

    def usage(self) -> dict[str, int]:
        return dict(self._usage)

    def _keep(self, tokens: list[int]) -> int:
        previous = self._prompt
        if not (self.reuse_prefix and previous and tokens[: len(previous)] == previous):
            return 0
        cached = self.engine.cached_tokens()
        keep = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            keep += 1
        return min(keep, len(tokens) - 1)

    def __call__(self, messages: list[dict[str, str]], max_tokens: int) -> str:
        tokens = self.engine.tokenize(self.renderer.render_messages(messages))
        keep = self._keep(tokens)
        before = self.engine.stats.prompt_tokens_evaluated
        if keep == 0:
            logits = self.engine.prime(tokens, [head_length(self._opening, tokens)])
        else:
            logits = self.engine.extend(tokens, keep)
        evaluated = self.engine.stats.prompt_tokens_evaluated - before
        budget = max(1, min(max_tokens, self.engine.n_ctx - len(tokens) - 1))
        generation = self.engine.greedy(len(tokens), logits, budget, self.is_final)
        self._prompt = tokens
        self._usage["prompt_tokens"] += len(tokens)
        self._usage["prompt_tokens_evaluated"] += evaluated
        self._usage["decode_tokens"] += len(generation.tokens)
        return generation.raw

    def clip(self, text: str, max_tokens: int) -> tuple[str, int, bool]:
        """`text` cut to at most `max_tokens` of this model's tokens (between words where
        possible), its token count, and whether it was cut."""
        llm = self.engine.llm
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if len(tokens) <= max_tokens:
            return text, len(tokens), False
        cut = self.engine._detok(tokens[:max_tokens])
        if " " in cut.strip():
            cut = cut[: cut.rstrip().rfind(" ")]
        cut = cut.rstrip()
        n = len(llm.tokenize(cut.encode("utf-8"), add_bos=False, special=False))
        return cut, n, True


def chat_generator(
    manifest: Mapping[str, Any],
    *,
    max_ctx: int,
    threads: int,
    n_batch: int,
    n_gpu_layers: int,
    reuse_prefix: bool = False,
    is_final: Callable[[str], bool] | None = None,
    opening: list[dict[str, str]] | None = None,
) -> ChatGenerator:
    """Greedy chat completions from the model in `manifest`, in its own chat template
    (the agent and the answer judge both talk to a model this way); `opening`: the
    messages every conversation starts with, evaluated once and reused."""
    from safescale.data.models import verify_model_file

    engine = LlamaEngine(
        verify_model_file(manifest),
        n_ctx=min(manifest["n_ctx"], max_ctx),
        threads=threads,
        n_batch=n_batch,
        n_gpu_layers=n_gpu_layers,
    )
    renderer = Renderer(manifest["prompt_style"], engine.llm)
    return ChatGenerator(
        engine,
        renderer,
        reuse_prefix=reuse_prefix,
        is_final=is_final,
        opening=renderer.opening(opening) if opening else None,
    )
