"""Agentic RAG through a real small model (Qwen2.5-Coder-0.5B): the protocol, the
early stop, the KV-cache reuse within a question and the accounting."""

from __future__ import annotations

import re
from functools import partial

import pytest
from conftest import headache_question, model_path

from safescale.prompting.agent_protocol import reply_complete
from safescale.prompting.agentic import AgentSettings, agent_transcript, summarize_transcripts
from safescale.retrieval.chunking import Chunk

pytestmark = pytest.mark.slow

CORPUS = {
    "sah#0": (
        "Subarachnoid haemorrhage",
        "A sudden severe thunderclap headache, the worst of the patient's life, suggests "
        "subarachnoid haemorrhage. Non-contrast CT of the head is the first imaging test; "
        "within six hours of onset its sensitivity is close to 100 percent.",
    ),
    "lp#0": (
        "Lumbar puncture after negative CT",
        "When CT of the head is negative more than six hours after the headache, lumbar "
        "puncture looks for xanthochromia.",
    ),
    "knee#0": (
        "Knee radiographs",
        "The Ottawa knee rules decide which injured knees need radiographs.",
    ),
    "chest#0": (
        "Chest radiograph",
        "The chest radiograph is the first test for suspected pneumonia in adults.",
    ),
    "spine#0": (
        "Lumbar spine MRI",
        "MRI of the lumbar spine is not needed for acute low back pain without red flags.",
    ),
}
TEN_QUERIES = "Repeat these lines exactly:\n" + "\n".join(
    f"QUERY: bronze {w}" for w in ("alloy", "tin", "age", "casting", "statues", "bells")
)
SETTINGS = AgentSettings(
    max_rounds=2,
    queries_per_round=2,
    top_k_per_query=2,
    final_k=3,
    plan_max_tokens=32,
    passage_max_tokens=60,
    passage_budget_tokens=300,
)


def chunk_of(cid: str) -> Chunk:
    title, text = CORPUS[cid]
    return Chunk(cid, cid.split("#")[0], title, text, len(text.split()))


def search(query: str, k: int) -> list[tuple[str, float]]:
    """Word-overlap retrieval over CORPUS: a real, if small, ranking."""
    words = set(re.findall(r"[a-z]+", query.lower()))
    scores = {
        cid: len(words & set(re.findall(r"[a-z]+", f"{t} {x}".lower())))
        for cid, (t, x) in CORPUS.items()
    }
    ranked = sorted(scores, key=lambda c: (-scores[c], c))
    return [(c, float(scores[c])) for c in ranked[:k]]


@pytest.fixture(scope="module")
def qwen():
    from safescale.inference.llama_engine import chat_generator

    path = model_path("qwen2.5-coder-0.5b")
    manifest = {"name": "qwen2.5-coder-0.5b", "prompt_style": "chat", "n_ctx": 32768}
    import safescale.data.models as models

    real = models.verify_model_file
    models.verify_model_file = lambda m: path  # a registry path, not a fetched manifest
    try:
        return chat_generator(
            manifest,
            max_ctx=2048,
            threads=1,
            n_batch=512,
            n_gpu_layers=0,
            reuse_prefix=True,
            is_final=partial(reply_complete, limit=SETTINGS.queries_per_round),
        )
    finally:
        models.verify_model_file = real


class Spy:
    """Wraps the real generator: records each prompt and reply."""

    def __init__(self, generate):
        self.generate = generate
        self.calls: list[tuple[list[dict[str, str]], str]] = []

    def __call__(self, messages, max_tokens):
        reply = self.generate(messages, max_tokens)
        self.calls.append(([dict(m) for m in messages], reply))
        return reply


def transcript(qwen, q=None):
    qwen.reset()
    spy = Spy(qwen)
    t = agent_transcript(
        q or headache_question(), spy, search, chunk_of, SETTINGS, qwen.clip, qwen.usage
    )
    return t, spy


def test_real_model_follows_the_protocol_and_is_accounted(qwen):
    t, spy = transcript(qwen)
    assert t["usable_rounds"] >= 1, t["rounds"]
    rounds = t["rounds"]
    assert len(spy.calls) == t["n_rounds"] == len(rounds)
    # the loop ends on the model's ENOUGH in whatever round it comes, else at the limit
    assert all(r["decision"] != "enough" for r in rounds[:-1])
    assert t["stopped_by"] == ("model" if rounds[-1]["decision"] == "enough" else "limit")
    if t["evidence"] == "model":
        shown = [s["chunk_id"] for r in rounds for s in r["shown"]]
        assert t["final_chunk_ids"] == [shown[n - 1] for n in rounds[-1]["chosen"]][:3]
    # round 1 shows the passages' text, not only their titles
    assert (
        "[1] Subarachnoid haemorrhage: A sudden severe thunderclap"
        in spy.calls[0][0][-1]["content"]
    )
    for r, (_, reply) in zip(rounds, spy.calls, strict=True):
        assert r["reply"] == reply
        assert 0 < r["decode_tokens"] <= SETTINGS.plan_max_tokens
        assert 0 < r["prompt_tokens_evaluated"] <= r["prompt_tokens"]
    assert t["prompt_tokens"] == sum(r["prompt_tokens"] for r in rounds)
    row = summarize_transcripts({"qwen": [t]}).iloc[0]
    assert row["rounds"] == t["n_rounds"] and row["decode_tokens"] == t["decode_tokens"]


def test_decoding_stops_once_the_reply_is_complete(qwen):
    """Asked to copy six QUERY lines, the model is cut after the second one."""
    qwen.reset()
    reply = qwen([{"role": "user", "content": TEN_QUERIES}], 64)
    assert reply.count("QUERY:") == 2 and reply.endswith("\n"), reply
    assert qwen.usage()["decode_tokens"] < 64
    t, _ = transcript(qwen)
    for r in t["rounds"]:  # never decoded on past a complete reply
        text = r["reply"]
        ends = [i + 1 for i, ch in enumerate(text[:-1]) if ch == "\n"]
        assert not any(reply_complete(text[:i], 2) for i in ends), text


def test_a_later_round_reuses_the_cache_and_replies_do_not_depend_on_history(qwen):
    """Round 2 evaluates only what follows round 1's prompt and reply; the same
    conversation gives the same replies after another question ran."""
    first = [{"role": "user", "content": TEN_QUERIES}]
    qwen.reset()
    a1 = qwen(first, 32)
    u1 = qwen.usage()
    second = [
        *first,
        {"role": "assistant", "content": a1.strip()},
        {"role": "user", "content": "Now reply ENOUGH: 1"},
    ]
    a2 = qwen(second, 16)
    u2 = qwen.usage()
    evaluated = u2["prompt_tokens_evaluated"] - u1["prompt_tokens_evaluated"]
    submitted = u2["prompt_tokens"] - u1["prompt_tokens"]
    assert evaluated < submitted / 2, (evaluated, submitted)

    transcript(qwen)  # another conversation in between
    qwen.reset()
    assert qwen(first, 32) == a1 and qwen(second, 16) == a2
    u3 = qwen.usage()
    assert u3["prompt_tokens_evaluated"] - u2["prompt_tokens_evaluated"] > 0


def test_a_new_conversation_never_reuses_the_previous_cache(qwen):
    messages = [{"role": "user", "content": "Say ENOUGH: 1"}]
    qwen.reset()
    qwen(messages, 8)
    before = qwen.usage()
    qwen.reset()
    qwen(messages, 8)  # the very same prompt: still evaluated from position 0
    after = qwen.usage()
    evaluated = after["prompt_tokens_evaluated"] - before["prompt_tokens_evaluated"]
    assert evaluated == after["prompt_tokens"] - before["prompt_tokens"]


def test_a_model_that_answers_instead_is_counted_and_flagged(smollm2_path):
    """SmolLM2-135M answers the question instead of the protocol: its rounds are
    fallbacks, round 2 still shows round 1's passages (in the conversation) and new
    ones, and the summary flags the model, whose evidence is the marked fallback."""
    from safescale.inference.llama_engine import ChatGenerator, LlamaEngine
    from safescale.prompting.templates import Renderer

    engine = LlamaEngine(smollm2_path, n_ctx=2048, threads=1)
    smol = ChatGenerator(
        engine,
        Renderer("chat", engine.llm),
        reuse_prefix=True,
        is_final=partial(reply_complete, limit=SETTINGS.queries_per_round),
    )
    t, spy = transcript(smol)
    assert t["n_rounds"] == 2 and t["usable_rounds"] == 0 and t["n_fallbacks"] == 2
    assert t["stopped_by"] == "limit" and t["evidence"] == "fallback"
    first, second = (messages for messages, _ in spy.calls)
    assert second[: len(first)] == first  # round 1's passages stay in the conversation
    assert "[1] Subarachnoid haemorrhage: A sudden severe" in first[-1]["content"]
    assert "had no QUERY: or ENOUGH: line" in second[-1]["content"]
    assert "[3] " in second[-1]["content"]  # the stem, searched deeper: new passages
    assert t["rounds"][0]["searched"][0]["by"] == "fallback"
    assert t["prompt_tokens_evaluated"] < t["prompt_tokens"]  # round 2 reused round 1
    row = summarize_transcripts({"smollm2-135m": [t]}).iloc[0]
    assert bool(row["mostly_fallback"]) and row["fallback_evidence"] == 1
