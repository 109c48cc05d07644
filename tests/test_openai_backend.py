"""OpenAI-compatible backend: a real llama.cpp server on SmolLM2, and a scripted fake
server on 127.0.0.1 for retries, timeouts, ordering and API-key hygiene."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from conftest import headache_question

from safescale.data.question import Question
from safescale.inference.llama_engine import Decoding
from safescale.inference.openai_backend import (
    OpenAIBackend,
    letter_of_token,
    letter_probs_from_logprobs,
    parse_completion,
    predict_openai,
    predict_openai_batch,
)
from safescale.inference.parsing import parse_letter
from safescale.inference.predict import sample_seeds
from safescale.inference.sampling import SamplingSettings
from safescale.prompting.templates import completion_prompt

RECORD_KEYS = {
    "model",
    "condition",
    "question_id",
    "status",
    "error",
    "greedy",
    "samples",
    "letter_probs",
    "letter_mass",
    "seed",
    "prompt_tokens",
}
SENTINEL = "sk-SENTINEL-do-not-leak-7f3a9c"
KEY_ENV = "SAFESCALE_TEST_OPENAI_KEY"
SERVER_DEPS = ("uvicorn", "fastapi", "pydantic_settings", "sse_starlette", "starlette_context")

Q = headache_question(4)


def prompt_record(q: Question = Q, status: str = "ok") -> dict:
    return {
        "model": "smollm2-135m",
        "condition": "closed_book",
        "question_id": q.question_id,
        "status": status,
        "prompt": completion_prompt(q, None),
        "n_prompt_tokens": 0,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the real server ------------------------------------------------------
@pytest.fixture(scope="module")
def llama_server(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """`python -m llama_cpp.server` on a free loopback port, stopped by process group."""
    missing = [m for m in SERVER_DEPS if importlib.util.find_spec(m) is None]
    if missing:
        msg = f"llama-cpp-python[server] dependencies missing: {missing}"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(smollm2_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "1024",
        "--n_threads",
        "1",
        "--n_threads_batch",  # its default, all cores, crawls on a busy 2-core machine
        "1",
    ]
    with log_path.open("wb") as log_fh:
        proc = subprocess.Popen(
            cmd, stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama server exited {proc.returncode}:\n{log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"llama server not ready in 60 s:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield {"base_url": base, "log": log_path}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


DEC = Decoding(greedy_max_tokens=5, n_samples=3, sample_max_tokens=5)


def test_real_server_record_shape_and_letters(llama_server):
    with OpenAIBackend(llama_server["base_url"], "smollm2-135m", None, concurrency=2) as be:
        rec = predict_openai(be, Q, prompt_record(), DEC, seed=42)
    json.dumps(rec)  # JSON-serialisable as written to the predictions file
    assert set(rec) == RECORD_KEYS
    assert rec["status"] == "ok" and rec["error"] is None
    g = rec["greedy"]
    assert set(g) == {"raw", "letter", "n_tokens", "latency_s"}
    assert g["raw"].strip() and g["letter"] == parse_letter(g["raw"], Q.options)
    assert g["letter"] in Q.letters  # the one-shot completion prompt makes SmolLM2 answer a letter
    assert 1 <= g["n_tokens"] <= DEC.greedy_max_tokens and g["latency_s"] > 0
    assert len(rec["samples"]) == DEC.n_samples
    for s in rec["samples"]:
        assert set(s) == {"raw", "letter", "n_tokens"}
        assert s["letter"] == parse_letter(s["raw"], Q.options)
        assert 0 <= s["n_tokens"] <= DEC.sample_max_tokens
    probs = rec["letter_probs"]
    assert set(probs) == set(Q.letters) and sum(probs.values()) == pytest.approx(1, abs=1e-6)
    assert 0 < rec["letter_mass"] <= 1
    seeds = sample_seeds(42, "smollm2-135m", "closed_book", Q.question_id, DEC.n_samples)
    assert rec["seed"] == seeds[0]
    assert rec["prompt_tokens"] > 20


def test_real_server_matches_in_process_engine(llama_server, smollm2_path):
    """First-token logprobs give the engine's exact letter probabilities (to batching noise)."""
    from safescale.inference.llama_engine import LlamaEngine

    with OpenAIBackend(llama_server["base_url"], "smollm2-135m", None) as be:
        rec = predict_openai(be, Q, prompt_record(), Decoding(5, 0, 5), seed=1)
    engine = LlamaEngine(smollm2_path, n_ctx=1024, threads=1)
    tokens = engine.tokenize(prompt_record()["prompt"])
    out = engine.answer(tokens, Q.letters, Decoding(5, 0, 5), [])
    assert rec["prompt_tokens"] == len(tokens)
    assert rec["greedy"]["letter"] == parse_letter(out["greedy"].raw, Q.options)
    assert rec["letter_probs"] == pytest.approx(out["letter_probs"], abs=5e-3)
    assert rec["letter_mass"] == pytest.approx(out["letter_mass"], rel=1e-2)


def test_real_server_deterministic_at_temperature_zero(llama_server):
    dec = Decoding(5, 2, 5, SamplingSettings(temperature=0.0))
    with OpenAIBackend(llama_server["base_url"], "smollm2-135m", None, concurrency=2) as be:
        a = predict_openai(be, Q, prompt_record(), dec, seed=7)
        b = predict_openai(be, Q, prompt_record(), dec, seed=7)
    for r in (a, b):
        r["greedy"].pop("latency_s")
    assert a == b
    assert [s["raw"] for s in a["samples"]] == [a["greedy"]["raw"]] * 2


def test_real_server_api_key_not_leaked(llama_server, monkeypatch, caplog, capsys):
    monkeypatch.setenv(KEY_ENV, SENTINEL)
    caplog.set_level(logging.DEBUG)
    with OpenAIBackend(llama_server["base_url"], "smollm2-135m", KEY_ENV, concurrency=2) as be:
        recs = predict_openai_batch(be, [(Q, prompt_record())] * 2, DEC, seed=1)
        shown = repr(be)
    assert all(r["status"] == "ok" for r in recs)
    out = capsys.readouterr()
    for text in (json.dumps(recs), caplog.text, out.out, out.err, shown):
        assert SENTINEL not in text
    assert SENTINEL not in llama_server["log"].read_text(errors="replace")


# --- a scripted fake server -----------------------------------------------
class FakeServer:
    """Tiny /v1/completions stand-in: scripted (status, delay) answers, then 200s.

    Records each request's headers and JSON body; error bodies echo the
    Authorization header to prove the client redacts what a server sends back.
    """

    def __init__(self, script: list[tuple[int, float]] | None = None, logprobs: bool = True):
        self.script = list(script or [])
        self.logprobs = logprobs
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.requests.append({"headers": dict(self.headers), "body": body})
                    status, delay = fake.script.pop(0) if fake.script else (200, 0.0)
                if delay:
                    fake.release.wait(delay)
                if status == 200:
                    payload = fake.answer(body)
                else:
                    auth = self.headers.get("Authorization", "")
                    payload = {"error": {"message": f"failed for {auth}", "code": status}}
                data = json.dumps(payload).encode()
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *a: None  # a client that timed out closed the socket
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def answer(self, body: dict) -> dict:
        """' B' for greedy; samples answer the letter their seed selects."""
        letter = "B" if "seed" not in body else "ABCD"[body["seed"] % 4]
        choice: dict = {"text": f" {letter}", "index": 0, "finish_reason": "stop"}
        if body.get("logprobs") and self.logprobs:
            top = {" B": -0.5, "B": -3.0, " A": -1.5, " C": -4.0, "The": -2.0, " E": -3.0}
            choice["logprobs"] = {"tokens": [" B"], "top_logprobs": [top]}
        else:
            choice["logprobs"] = None
        return {"choices": [choice], "usage": {"prompt_tokens": 11, "completion_tokens": 1}}

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def fake_backend(server: FakeServer, sleeps: list[float] | None = None, **kw) -> OpenAIBackend:
    kw = {"api_key_env": None, "concurrency": 3, "timeout_s": 5.0, "max_retries": 3, **kw}
    sleeper = sleeps.append if sleeps is not None else (lambda s: None)
    return OpenAIBackend(server.base_url, "m", backoff_base_s=0.01, sleep=sleeper, **kw)


def test_requests_carry_decoding_and_seeds():
    dec = Decoding(4, 6, 3, SamplingSettings(temperature=0.7, top_k=5, top_p=0.9, min_p=0.1))
    with FakeServer() as srv, fake_backend(srv) as be:
        rec = predict_openai(be, Q, prompt_record(), dec, seed=3)
    greedy = [r["body"] for r in srv.requests if "seed" not in r["body"]]
    samples = [r["body"] for r in srv.requests if "seed" in r["body"]]
    assert len(greedy) == 1 and len(samples) == 6
    g = greedy[0]
    assert g["prompt"] == prompt_record()["prompt"] and g["model"] == "m"
    assert g["temperature"] == 0 and g["max_tokens"] == 4 and g["logprobs"] == 20
    seeds = sample_seeds(3, "smollm2-135m", "closed_book", Q.question_id, 6)
    assert sorted(s["seed"] for s in samples) == sorted(x & 0x7FFFFFFF for x in seeds)
    for s in samples:
        assert (s["temperature"], s["top_p"], s["top_k"], s["min_p"]) == (0.7, 0.9, 5, 0.1)
        assert s["max_tokens"] == 3 and s["repeat_penalty"] == 1.0 and "logprobs" not in s
    # Samples come back in seed order whatever order the pool finished them in.
    assert [s["letter"] for s in rec["samples"]] == ["ABCD"[(x & 0x7FFFFFFF) % 4] for x in seeds]
    assert rec["prompt_tokens"] == 11 and rec["greedy"]["letter"] == "B"
    # Renormalised over A-D from the top logprobs; " E" is not an option, "The" no letter.
    raw = {"A": math.exp(-1.5), "B": math.exp(-0.5) + math.exp(-3.0), "C": math.exp(-4.0)}
    total = sum(raw.values())
    assert rec["letter_mass"] == pytest.approx(total, abs=1e-7)
    assert rec["letter_probs"] == pytest.approx(
        {"A": raw["A"] / total, "B": raw["B"] / total, "C": raw["C"] / total, "D": 0.0},
        abs=1e-7,
    )


def test_extra_body_and_plain_openai_fields():
    with FakeServer() as srv, fake_backend(srv, extra_sampling=False, extra_body={"x": 1}) as be:
        be.complete("p", max_tokens=1, temperature=0.0)
        body = srv.requests[0]["body"]
    assert body["x"] == 1 and not {"top_k", "min_p", "repeat_penalty"} & set(body)


def test_letter_probs_null_without_logprobs_and_skipped_prompt():
    with FakeServer(logprobs=False) as srv, fake_backend(srv) as be:
        rec = predict_openai(be, Q, prompt_record(), DEC, seed=1)
        skipped = predict_openai(be, Q, prompt_record(status="skipped"), DEC, seed=1)
        n_requests = len(srv.requests)
    assert rec["status"] == "ok" and rec["letter_probs"] is None and rec["letter_mass"] is None
    assert skipped["status"] == "skipped" and skipped["greedy"] is None
    assert n_requests == 1 + DEC.n_samples  # the skipped prompt sent nothing


def test_batch_keeps_input_order():
    qs = [Question(f"q{i}", "?", dict(Q.options), "A", Q.labels) for i in range(5)]
    with FakeServer() as srv, fake_backend(srv) as be:
        recs = predict_openai_batch(be, [(q, prompt_record(q)) for q in qs], DEC, seed=9)
    assert [r["question_id"] for r in recs] == [q.question_id for q in qs]
    assert all(r["status"] == "ok" and len(r["samples"]) == DEC.n_samples for r in recs)


def test_retry_on_503_twice_then_ok_with_deterministic_backoff():
    sleeps: list[float] = []
    with (
        FakeServer([(503, 0.0), (503, 0.0)]) as srv,
        fake_backend(srv, sleeps, concurrency=1) as be,
    ):
        rec = predict_openai(be, Q, prompt_record(), Decoding(5, 0, 5), seed=1)
        attempts = be.attempts
        key = "smollm2-135m/closed_book/q1/greedy"
        expected = [be.backoff_delay(key, 0), be.backoff_delay(key, 1)]
    assert rec["status"] == "ok" and rec["greedy"]["letter"] == "B"
    assert attempts == 3 and sleeps == expected
    assert 0.005 <= sleeps[0] <= 0.01 and 0.01 <= sleeps[1] <= 0.02  # base * 2**n, equal jitter
    other = OpenAIBackend("http://127.0.0.1:9/v1", "m", None, backoff_base_s=0.01)
    same = OpenAIBackend("http://127.0.0.1:9/v1", "m", None, backoff_base_s=0.01, jitter_seed=0)
    assert [same.backoff_delay(key, i) for i in range(2)] == expected
    assert other.backoff_delay(key, 5) != other.backoff_delay("another", 5)
    other.close()
    same.close()


def test_429_retried_other_4xx_not():
    with FakeServer([(429, 0.0)]) as srv, fake_backend(srv) as be:
        assert predict_openai(be, Q, prompt_record(), Decoding(5, 0, 5), 1)["status"] == "ok"
        assert be.attempts == 2
    with FakeServer([(400, 0.0)]) as srv, fake_backend(srv) as be:
        rec = predict_openai(be, Q, prompt_record(), Decoding(5, 0, 5), 1)
        assert be.attempts == 1
    assert rec["status"] == "error" and "HTTP 400" in rec["error"]
    assert rec["greedy"] is None and rec["samples"] == []


def test_timeout_recorded_or_raised():
    script = [(200, 3.0)] * 4
    with FakeServer(script) as srv, fake_backend(srv, timeout_s=0.3, max_retries=1) as be:
        t0 = time.monotonic()
        rec = predict_openai(be, Q, prompt_record(), DEC, seed=1)
        elapsed = time.monotonic() - t0
        assert be.attempts == 2
        with pytest.raises(httpx.TimeoutException):
            predict_openai(be, Q, prompt_record(), DEC, seed=1, on_error="fail")
    assert rec["status"] == "error" and "Timeout" in rec["error"]
    assert elapsed < 2.5  # two 0.3 s attempts, not the server's 3 s


def test_connection_refused_retried_then_recorded():
    be = OpenAIBackend(
        f"http://127.0.0.1:{free_port()}/v1", "m", None, max_retries=2, sleep=lambda s: None
    )
    with be:
        rec = predict_openai(be, Q, prompt_record(), DEC, seed=1)
        assert be.attempts == 3
    assert rec["status"] == "error" and rec["error"].startswith("ConnectError")


def test_api_key_sent_as_bearer_but_never_leaked(monkeypatch, caplog, capsys):
    monkeypatch.setenv(KEY_ENV, SENTINEL)
    caplog.set_level(logging.DEBUG)
    with FakeServer([(503, 0.0), (401, 0.0), (503, 0.0), (401, 0.0)]) as srv:
        with fake_backend(srv, api_key_env=KEY_ENV) as be:
            rec = predict_openai(be, Q, prompt_record(), DEC, seed=1)
            with pytest.raises(Exception) as raised:
                predict_openai(be, Q, prompt_record(), DEC, seed=1, on_error="fail")
            shown = repr(be) + str(vars(be))
        sent = {r["headers"].get("Authorization") for r in srv.requests}
    assert sent == {f"Bearer {SENTINEL}"}  # the key does reach the server
    assert rec["status"] == "error" and "HTTP 401" in rec["error"] and "***" in rec["error"]
    out = capsys.readouterr()
    for text in (json.dumps(rec), str(raised.value), caplog.text, out.out, out.err, shown):
        assert SENTINEL not in text
    assert "retry 1/3" in caplog.text  # the retry was logged, without the key


def test_letter_token_mapping():
    assert [letter_of_token(t, "ABC") for t in ("A", " B", "\u2581C", "\u0120A")] == list("ABCA")
    assert [letter_of_token(t, "ABC") for t in ("D", " AB", "a", "  A", "")] == [None] * 5
    # An opening bracket before the letter spells the letter too.
    spelled = ("(A", " (B", "[C", " [A", "\u2581(B", "\u0120[C")
    assert [letter_of_token(t, "ABC") for t in spelled] == list("ABCABC")
    assert [letter_of_token(t, "ABC") for t in ("A)", "((A", "( A", "{A")] == [None] * 4
    probs, mass = letter_probs_from_logprobs({"Z": -0.1}, "AB")
    assert probs == {"A": 0.0, "B": 0.0} and mass == 0.0


def test_parse_completion_both_logprob_shapes():
    legacy = {
        "choices": [{"text": " B", "logprobs": {"tokens": [" B"], "top_logprobs": [{" B": -0.1}]}}],
    }
    native = {
        "choices": [
            {
                "text": " B",
                "logprobs": {
                    "content": [
                        {
                            "token": " B",
                            "logprob": -0.1,
                            "top_logprobs": [
                                {"token": " B", "logprob": math.log(0.5)},
                                {"token": " B", "logprob": math.log(0.2)},
                                {"token": "A", "logprob": math.log(0.1)},
                            ],
                        }
                    ]
                },
            }
        ],
        "usage": {"completion_tokens": 1, "prompt_tokens": 3},
    }
    a = parse_completion(legacy, 0.1)
    assert (
        a.first_top_logprobs == pytest.approx({" B": -0.1})
        and a.n_tokens == 1
        and a.prompt_tokens is None
    )
    b = parse_completion(native, 0.1)
    assert b.first_top_logprobs == pytest.approx({" B": math.log(0.7), "A": math.log(0.1)})
    assert (
        parse_completion({"choices": [{"text": "x", "logprobs": None}]}, 0).first_top_logprobs
        is None
    )
