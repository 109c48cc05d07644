"""OpenAI-compatible server backend (llama.cpp's server, vLLM, ...) for the same records.

The prompt JSONL already holds each model's exact rendered prompt string, so the
legacy `/v1/completions` endpoint is used with `prompt` (never chat, which would
re-apply a template). One greedy request (temperature 0, first-token logprobs)
and one request per self-consistency sample (its own seed) give a record in
docs/FORMATS.md's prediction shape.

Differences from the in-process engine: letter probabilities come from the
server's top-k first-token logprobs (letters outside the top k count as 0) and
are null when the server returns none; samples are independent requests, so
their reproducibility depends on the server honouring `seed`.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from safescale.data.question import Question
from safescale.errors import OpenAIServerError
from safescale.inference.llama_engine import Decoding
from safescale.inference.parsing import letter_of_token
from safescale.inference.predict import fill_answers, new_record
from safescale.inference.sampling import derive_seed

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

RETRY_STATUS = frozenset({429}) | frozenset(range(500, 600))
# Transient transport failures: connect/read/write errors, timeouts, dropped connections.
RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
GREEDY_LOGPROBS = 20


def _retry_after(value: str | None) -> float | None:
    """Seconds from a numeric Retry-After header (HTTP dates are ignored)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class _Redactor:
    """Masks the key in text; its repr shows nothing, so vars(backend) stays clean."""

    __slots__ = ("_secrets",)

    def __init__(self, key: str):
        self._secrets = (f"Bearer {key}", key) if key else ()

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return "<redactor>"


@dataclass(frozen=True)
class Completion:
    """One completion choice, reduced to what a prediction record needs."""

    text: str
    n_tokens: int | None
    prompt_tokens: int | None
    first_top_logprobs: dict[str, float] | None
    latency_s: float


class OpenAIBackend:
    """Thread-safe client for `/v1/completions` with bounded retries and concurrency.

    At most `concurrency` HTTP requests are in flight at once (a semaphore around
    each attempt, so callers may add their own thread pools without overloading
    the server); backoff sleeps do not hold a slot. The API key is read once from
    the environment variable `api_key_env` and only ever sent as a Bearer header.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 4,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        *,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        jitter_seed: int = 0,
        extra_sampling: bool = True,
        extra_body: Mapping[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.jitter_seed = jitter_seed
        self.extra_sampling = extra_sampling
        self.extra_body = dict(extra_body or {})
        self._sleep = sleep
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        self._redactor = _Redactor(key)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(self.timeout_s),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self._slots = threading.BoundedSemaphore(concurrency)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="openai")
        self.attempts = 0  # HTTP attempts made, for logs and tests
        self._attempts_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r}, "
            f"api_key_env={self.api_key_env!r}, concurrency={self.concurrency})"
        )

    # --- lifecycle --------------------------------------------------------
    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- helpers ----------------------------------------------------------
    def redact(self, text: str) -> str:
        """`text` with the API key masked: server error bodies may echo request headers."""
        return self._redactor(text)

    def backoff_delay(self, key: str, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry `attempt` (0-based) of request `key`.

        Exponential with "equal jitter" (half fixed, half uniform), drawn from a
        stream seeded by (jitter_seed, key, attempt) so a rerun waits the same
        way whatever the thread interleaving. A numeric Retry-After is honoured
        up to backoff_max_s.
        """
        cap = min(self.backoff_max_s, self.backoff_base_s * 2**attempt)
        u = random.Random(derive_seed(self.jitter_seed, key, attempt)).random()
        delay = cap * (0.5 + 0.5 * u)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max_s))
        return delay

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`fn` over items on the request pool, results in input order.

        The first failure cancels what has not started and is re-raised.
        """
        futures: list[Future[R]] = [self._pool.submit(fn, item) for item in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    # --- requests ---------------------------------------------------------
    def _post_once(self, payload: Mapping[str, Any]) -> tuple[dict, float]:
        with self._slots:
            with self._attempts_lock:
                self.attempts += 1
            t0 = time.perf_counter()
            resp = self._client.post("/completions", json=payload)
            latency = time.perf_counter() - t0
        if resp.status_code >= 400:
            raise OpenAIServerError(
                resp.status_code,
                self.redact(resp.text[:500]),
                _retry_after(resp.headers.get("retry-after")),
            )
        return resp.json(), latency

    def post_completion(self, payload: Mapping[str, Any], key: str) -> tuple[dict, float]:
        """POST with retries on connection errors, timeouts, 429 and 5xx.

        Returns the JSON body and the latency of the successful attempt. Other
        4xx are raised at once: repeating a bad request cannot fix it.
        """
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                return self._post_once(payload)
            except OpenAIServerError as exc:
                if exc.status_code not in RETRY_STATUS or attempt == self.max_retries:
                    raise
                reason = f"HTTP {exc.status_code}"
                retry_after = exc.retry_after
            except RETRY_ERRORS as exc:
                if attempt == self.max_retries:
                    raise
                reason = type(exc).__name__
            delay = self.backoff_delay(key, attempt, retry_after)
            log.warning(
                "%s: %s, retry %d/%d in %.2fs",
                key,
                reason,
                attempt + 1,
                self.max_retries,
                delay,
            )
            self._sleep(delay)
        raise AssertionError("unreachable")

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        top_p: float = 1.0,
        top_k: int = 0,
        min_p: float = 0.0,
        seed: int | None = None,
        logprobs: int | None = None,
        key: str = "",
    ) -> Completion:
        """One completion; `key` names the request in logs and seeds its backoff jitter."""
        payload: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "n": 1,
            "stream": False,
        }
        if seed is not None:
            # llama.cpp takes a uint32 seed and reads 0xFFFFFFFF as "random".
            payload["seed"] = seed & 0x7FFFFFFF
        if logprobs is not None:
            payload["logprobs"] = logprobs
        if self.extra_sampling:
            # Non-OpenAI fields: llama.cpp defaults to top_k=40, min_p=0.05 and
            # repeat_penalty=1.1, which would change the study's distribution.
            payload.update(top_k=top_k, min_p=min_p, repeat_penalty=1.0)
        payload.update(self.extra_body)  # server-specific fields, e.g. add_special_tokens
        body, latency = self.post_completion(payload, key or "completion")
        return parse_completion(body, latency)


def _first_top_logprobs(logprobs: Any) -> dict[str, float] | None:
    """The first token's top logprobs, from either shape servers use.

    Legacy completions (OpenAI, vLLM, llama-cpp-python): `{"top_logprobs": [{tok: lp}]}`;
    llama.cpp's own llama-server: `{"content": [{"top_logprobs": [{"token", "logprob"}]}]}`.
    """
    if not isinstance(logprobs, Mapping):
        return None
    top = logprobs.get("top_logprobs")
    if not top and isinstance(logprobs.get("content"), list) and logprobs["content"]:
        top = [logprobs["content"][0].get("top_logprobs")]
    if not top or not top[0]:
        return None
    first = top[0]
    items: Iterable[tuple[Any, Any]]
    if isinstance(first, Mapping):
        items = first.items()
    else:
        items = ((d.get("token"), d.get("logprob")) for d in first if isinstance(d, Mapping))
    probs: dict[str, float] = {}
    for token, logprob in items:
        if token is not None and logprob is not None:
            # Two ids can decode to the same text; their probabilities add up.
            probs[str(token)] = probs.get(str(token), 0.0) + math.exp(float(logprob))
    return {t: math.log(p) if p > 0 else -math.inf for t, p in probs.items()} or None


def parse_completion(body: Mapping[str, Any], latency_s: float) -> Completion:
    """The first choice of a `/v1/completions` answer."""
    choices = body.get("choices") or []
    if not choices:
        raise ValueError("server answer has no choices")
    choice = choices[0]
    usage = body.get("usage") or {}
    n_tokens = usage.get("completion_tokens")
    lp = choice.get("logprobs")
    if n_tokens is None and isinstance(lp, Mapping):
        seq = lp.get("tokens") if lp.get("tokens") is not None else lp.get("content")
        n_tokens = len(seq) if isinstance(seq, list) else None
    return Completion(
        text=choice.get("text") or "",
        n_tokens=n_tokens,
        prompt_tokens=usage.get("prompt_tokens"),
        first_top_logprobs=_first_top_logprobs(lp),
        latency_s=latency_s,
    )


def letter_probs_from_logprobs(
    top: Mapping[str, float], letters: Sequence[str]
) -> tuple[dict[str, float], float]:
    """Letter probabilities renormalised over `letters`, and their raw mass.

    Mirrors LlamaEngine.letter_probabilities, but only over the tokens the
    server listed: a letter outside its top-k counts as 0, so the mass is a
    lower bound of the exact one.
    """
    mass = dict.fromkeys(letters, 0.0)
    for token, logprob in top.items():
        letter = letter_of_token(token, letters)
        if letter is not None and math.isfinite(logprob):
            mass[letter] += math.exp(logprob)
    total = sum(mass.values())
    if total <= 0:
        return dict.fromkeys(letters, 0.0), 0.0
    return {k: v / total for k, v in mass.items()}, total


def predict_openai(
    backend: OpenAIBackend,
    question: Question,
    prompt_record: dict,
    decoding: Decoding,
    seed: int,
    on_error: str = "record",
) -> dict:
    """One prediction record (docs/FORMATS.md) from an OpenAI-compatible server.

    The greedy request goes first so its latency is not inflated by the
    samples queueing on the server; the samples then run on the backend's pool
    and are stored in seed order. On failure after retries the record has
    status "error" and the (redacted) message, or the error is raised when
    `on_error == "fail"`.
    """
    q = question
    rec, seeds = new_record(prompt_record, q, decoding, seed)
    if seeds is None:
        return rec
    text = prompt_record["prompt"]
    tag = f"{prompt_record['model']}/{prompt_record['condition']}/{q.question_id}"
    s = decoding.sampling
    try:
        greedy = backend.complete(
            text,
            max_tokens=decoding.greedy_max_tokens,
            temperature=0.0,
            logprobs=GREEDY_LOGPROBS,
            key=f"{tag}/greedy",
        )

        def sample(i: int) -> Completion:
            return backend.complete(
                text,
                max_tokens=decoding.sample_max_tokens,
                temperature=s.temperature,
                top_p=s.top_p,
                top_k=s.top_k,
                min_p=s.min_p,
                seed=seeds[i],
                key=f"{tag}/sample{i}",
            )

        samples = backend.map(sample, range(len(seeds)))
    except Exception as exc:  # recorded per question unless the config says fail
        if on_error == "fail":
            raise
        rec.update(status="error", error=backend.redact(f"{type(exc).__name__}: {exc}"))
        return rec
    probs, mass = None, None
    if greedy.first_top_logprobs:
        probs, mass = letter_probs_from_logprobs(greedy.first_top_logprobs, q.letters)
    fill_answers(
        rec,
        q,
        (greedy.text, greedy.n_tokens, greedy.latency_s),
        [(c.text, c.n_tokens) for c in samples],
        probs,
        mass,
    )
    if greedy.prompt_tokens is not None:
        rec["prompt_tokens"] = greedy.prompt_tokens
    return rec


def predict_openai_batch(
    backend: OpenAIBackend,
    items: Iterable[tuple[Question, dict]],
    decoding: Decoding,
    seed: int,
    on_error: str = "record",
) -> list[dict]:
    """Records for many (question, prompt) pairs, in input order.

    Questions run on their own pool of `backend.concurrency` threads; the
    backend's semaphore still caps requests in flight, so this only keeps the
    server busy across question boundaries.
    """
    pairs = list(items)
    with ThreadPoolExecutor(backend.concurrency, thread_name_prefix="openai-q") as pool:
        futures = [
            pool.submit(predict_openai, backend, q, p, decoding, seed, on_error) for q, p in pairs
        ]
        return [f.result() for f in futures]


def backend_from_config(config: Mapping[str, Any], model: str) -> OpenAIBackend:
    """An OpenAIBackend from the validated config's `inference.openai` block."""
    o = config["inference"]["openai"]
    return OpenAIBackend(
        base_url=o["base_url"],
        model=model,
        api_key_env=o["api_key_env"],
        concurrency=o["concurrency"],
        timeout_s=o["timeout_s"],
        max_retries=o["max_retries"],
        jitter_seed=config.get("seed", 0),
    )
