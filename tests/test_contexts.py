"""Context budgets, per-condition context blocks, prompt records and prompt templates."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from safescale import conditions as C
from safescale.data.question import OptionLabels, Question
from safescale.prompting.contexts import (
    Budget,
    build_prompt_records,
    condition_context,
    fill_to_budget,
    format_chunks,
)
from safescale.prompting.templates import (
    COMPLETION_EXAMPLE,
    SYSTEM_PROMPT,
    Renderer,
    completion_prompt,
    format_question,
)
from safescale.retrieval.chunking import Chunk

OPTIONS = {
    "A": "Non-contrast CT of the head",
    "B": "MRI of the lumbar spine",
    "C": "Abdominal ultrasound",
    "D": "Chest radiograph",
}
LABELS = {k: OptionLabels() for k in OPTIONS}
Q_FULL = Question(
    "q-full",
    "Which first imaging test suits a thunderclap headache?",
    OPTIONS,
    "A",
    LABELS,
    evidence_clean="Thunderclap headache: non-contrast head CT first.",
    evidence_conflict="Thunderclap headache: lumbar spine MRI first.",
)
Q_NO_CLEAN = Question(
    "q-no-clean",
    "Which test confirms a distal radius fracture?",
    OPTIONS,
    "D",
    LABELS,
    evidence_clean=None,
    evidence_conflict="Wrist fractures need abdominal ultrasound.",
)
TOPICS = [
    "pulmonary embolism",
    "renal colic",
    "appendicitis",
    "stroke",
    "wrist fracture",
    "pneumothorax",
    "aortic dissection",
    "cholecystitis",
    "meniscal tear",
    "osteomyelitis",
    "sarcoidosis",
    "pancreatitis",
]
RANKED = [
    Chunk(
        f"p{i}#0",
        f"p{i}",
        topic.title(),
        f"Finding {i} concerns {topic} and its typical radiological appearance on CT.",
        16,
    )
    for i, topic in enumerate(TOPICS)
]
ALL_RANKED = {Q_FULL.question_id: RANKED, Q_NO_CLEAN.question_id: RANKED[::-1]}
AGENTIC = {Q_FULL.question_id: [RANKED[3], RANKED[0]]}
BIG = Budget(window=8192)


@pytest.fixture(scope="module")
def vocab(smollm2_path):
    from llama_cpp import Llama

    return Llama(str(smollm2_path), vocab_only=True, verbose=False)


@pytest.fixture(scope="module")
def chat(vocab) -> Renderer:
    return Renderer("chat", vocab)


@pytest.fixture(scope="module")
def completion(vocab) -> Renderer:
    return Renderer("completion", vocab)


def records(renderer, condition, budget=BIG, questions=(Q_FULL, Q_NO_CLEAN), **kw):
    kw.setdefault("ranked", ALL_RANKED)
    kw.setdefault("top_k", 3)
    kw.setdefault("agentic", AGENTIC)
    out = build_prompt_records(list(questions), "smollm2", condition, renderer, budget, **kw)
    return {r["question_id"]: r for r in out}


# --------------------------------------------------------------------------- Budget


def test_budget_is_window_minus_reserve_new_tokens_and_margin():
    assert Budget(window=8192).context_tokens == 8192 - 2048 - 10 - 1000
    budget = Budget(window=8192, question_reserve=1000, max_new_tokens=20, margin=100)
    assert budget.context_tokens == 7072


def test_budget_cap_only_lowers_the_room():
    assert Budget(window=32768, cap=4096).context_tokens == 4096
    assert Budget(window=4000, cap=4096).context_tokens == 4000 - 3058


@pytest.mark.parametrize(("window", "expected"), [(3059, 1), (3058, 0), (2048, 0), (0, 0)])
def test_budget_is_never_negative(window, expected):
    assert Budget(window=window).context_tokens == expected
    assert Budget(window=window, cap=10).context_tokens == min(expected, 10)


# --------------------------------------------------------------------------- fill_to_budget


def words(text: str) -> int:
    return len(text.split())


def chunk(i: int, n_words: int) -> Chunk:
    return Chunk(f"c{i}#0", f"c{i}", "T", " ".join(["w"] * n_words), n_words)


def test_fill_to_budget_keeps_whole_chunks_in_rank_order():
    chunks = [chunk(i, 3) for i in range(5)]  # each entry "[i] T: w w w" is 5 words
    assert fill_to_budget(chunks, 15, words) == chunks[:3]  # exactly fits
    assert fill_to_budget(chunks, 14, words) == chunks[:2]
    assert fill_to_budget(chunks, 100, words) == chunks
    assert fill_to_budget(chunks, 4, words) == []


def test_fill_to_budget_stops_at_the_first_chunk_that_does_not_fit():
    chunks = [chunk(0, 3), chunk(1, 20), chunk(2, 1)]
    # the third chunk would fit on its own, but ranks come first: no skipping ahead
    assert fill_to_budget(chunks, 12, words) == chunks[:1]


def test_fill_to_budget_with_real_token_counts(chat):
    budget = 120
    chosen = fill_to_budget(RANKED, budget, chat.count)
    assert 0 < len(chosen) < len(RANKED)
    assert chosen == RANKED[: len(chosen)]
    assert chat.count(format_chunks(chosen)) <= budget
    assert chat.count(format_chunks(RANKED[: len(chosen) + 1])) > budget


# --------------------------------------------------------------------------- contexts


def test_padded_top_1_has_top_10_length_and_only_the_top_1_text(chat):
    context, ids, reason = condition_context(
        Q_FULL, C.PADDED_TOP_1, RANKED, chat, BIG, top_k=3, agentic_chunks=None
    )
    assert reason is None
    assert ids == [RANKED[0].chunk_id]
    target = chat.count(format_chunks(RANKED[:10]))
    assert abs(chat.count(context) - target) <= 3
    one = format_chunks(RANKED[:1])
    pieces = context.split("\n\n")
    assert len(pieces) >= 5
    assert all(piece == one for piece in pieces[:-1])
    assert pieces[-1] and one.startswith(pieces[-1])
    assert not any(c.text in context for c in RANKED[1:])
    assert "Finding 1 " not in context


def test_padded_top_1_without_retrieval_is_skipped(chat):
    assert condition_context(Q_FULL, C.PADDED_TOP_1, [], chat, BIG, 3, None) == (
        None,
        [],
        "no retrieved chunks",
    )


def test_retrieval_conditions_take_their_top_k(chat):
    for condition, k in [(C.TOP_1, 1), (C.TOP_5, 5), (C.TOP_10, 10), (C.STANDARD_RAG, 3)]:
        context, ids, reason = condition_context(Q_FULL, condition, RANKED, chat, BIG, 3, None)
        assert reason is None
        assert ids == [c.chunk_id for c in RANKED[:k]]
        assert context == format_chunks(RANKED[:k])
    with pytest.raises(ValueError, match="unknown condition"):
        condition_context(Q_FULL, "open_book", RANKED, chat, BIG, 3, None)


# --------------------------------------------------------------------------- prompt records


def test_clean_evidence_is_skipped_when_the_question_has_none(chat):
    recs = records(chat, C.CLEAN_EVIDENCE)
    ok, skipped = recs["q-full"], recs["q-no-clean"]
    assert ok["status"] == "ok"
    assert Q_FULL.evidence_clean in ok["prompt"]
    assert skipped["status"] == "skipped"
    assert "evidence_clean" in skipped["reason"]
    assert skipped["prompt"] is None and skipped["n_prompt_tokens"] == 0
    # the conflict column is there for both questions
    conflict = records(chat, C.CONFLICT_EVIDENCE)
    assert [r["status"] for r in conflict.values()] == ["ok", "ok"]
    assert Q_NO_CLEAN.evidence_conflict in conflict["q-no-clean"]["prompt"]


def test_max_context_is_skipped_when_the_window_leaves_no_room(chat):
    recs = records(chat, C.MAX_CONTEXT, budget=Budget(window=3000))
    for rec in recs.values():
        assert rec["status"] == "skipped"
        assert "window 3000 leaves no room" in rec["reason"]
        assert rec["prompt"] is None and rec["context_ids"] == []


def test_max_context_fills_the_budget(chat):
    budget = Budget(window=4096, question_reserve=1024, margin=100, max_new_tokens=10, cap=150)
    rec = records(chat, C.MAX_CONTEXT, budget=budget)["q-full"]
    assert rec["status"] == "ok"
    n = len(rec["context_ids"])
    assert 0 < n < len(RANKED)
    assert rec["context_ids"] == [c.chunk_id for c in RANKED[:n]]
    assert rec["n_context_tokens"] <= 150


def test_prompt_longer_than_the_window_is_skipped(chat):
    n = chat.count(chat.render(Q_FULL, Q_FULL.evidence_clean))
    fits = Budget(window=n + 10, max_new_tokens=10)
    too_small = Budget(window=n + 9, max_new_tokens=10)
    ok = records(chat, C.CLEAN_EVIDENCE, budget=fits, questions=[Q_FULL])["q-full"]
    assert ok["status"] == "ok" and ok["n_prompt_tokens"] == n
    rec = records(chat, C.CLEAN_EVIDENCE, budget=too_small, questions=[Q_FULL])["q-full"]
    assert rec["status"] == "skipped"
    assert rec["reason"] == (
        f"prompt of {n} tokens + 10 new tokens exceeds the {n + 9}-token window"
    )
    assert rec["prompt"] is None


@pytest.mark.parametrize("condition", C.ALL_CONDITIONS)
def test_every_condition_gives_one_ok_or_skipped_record_per_question(chat, condition):
    recs = records(chat, condition)
    assert list(recs) == ["q-full", "q-no-clean"]
    expected_skips = {
        C.CLEAN_EVIDENCE: {"q-no-clean"},
        C.AGENTIC_RAG: {"q-no-clean"},  # no transcript for it
    }.get(condition, set())
    for qid, rec in recs.items():
        assert rec["model"] == "smollm2" and rec["condition"] == condition
        assert rec["status"] in {"ok", "skipped"}
        if qid in expected_skips:
            assert rec["status"] == "skipped" and rec["reason"]
            assert rec["prompt"] is None
        else:
            assert rec["status"] == "ok" and rec["reason"] is None
            assert rec["n_prompt_tokens"] == chat.count(rec["prompt"]) > 0
            assert rec["prompt"].endswith("<|im_start|>assistant\n")
            has_context = condition != C.CLOSED_BOOK
            assert ("Context:" in rec["prompt"]) is has_context
            assert (rec["n_context_tokens"] > 0) is has_context


def test_closed_book_has_no_context_and_rag_has_its_chunks(chat):
    closed = records(chat, C.CLOSED_BOOK)["q-full"]
    assert "Context:" not in closed["prompt"]
    assert closed["context_ids"] == [] and closed["n_context_tokens"] == 0
    rag = records(chat, C.STANDARD_RAG, top_k=2)["q-full"]
    assert rag["context_ids"] == ["p0#0", "p1#0"]
    assert RANKED[0].text in rag["prompt"] and RANKED[1].text in rag["prompt"]
    assert RANKED[2].text not in rag["prompt"]
    agentic = records(chat, C.AGENTIC_RAG)["q-full"]
    assert agentic["context_ids"] == ["p3#0", "p0#0"]
    assert agentic["prompt"].index(RANKED[3].text) < agentic["prompt"].index(RANKED[0].text)


def test_retrieval_condition_without_rankings_is_skipped(chat):
    rec = records(chat, C.STANDARD_RAG, ranked={})["q-full"]
    assert rec["status"] == "skipped"
    assert rec["reason"]


# --------------------------------------------------------------------------- templates


def test_format_question_layout():
    q = Question("x", "Pick one?", {"A": "yes", "B": "no"}, "A", {})
    assert format_question(q) == "Question: Pick one?\nOptions:\nA. yes\nB. no\nAnswer:"


def test_chat_prompt_has_system_prompt_and_ends_with_assistant_turn(chat):
    prompt = chat.render(Q_FULL, "  Some retrieved context.  ")
    assert prompt.startswith("<|im_start|>system\n" + SYSTEM_PROMPT + "<|im_end|>")
    user = prompt.index("<|im_start|>user\n")
    assert prompt.index(SYSTEM_PROMPT) < user
    assert "Context:\nSome retrieved context.\n\n" + format_question(Q_FULL) in prompt
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert prompt.count("<|im_start|>") == 3
    # the special tokens are parsed, not spelled out as text
    assert chat.count(prompt) < len(prompt) // 2
    tokens = chat.tokenize(prompt)
    assert tokens[0] == chat.llama.token_bos() != tokens[1]  # one BOS, not two


def test_completion_prompt_has_the_example_and_ends_with_answer(completion):
    prompt = completion_prompt(Q_FULL, None)
    assert prompt.startswith(SYSTEM_PROMPT + "\n\n")
    assert COMPLETION_EXAMPLE in prompt
    assert prompt.endswith("Answer:")
    assert prompt.count("Answer:") == 2  # the worked example's and ours
    assert "Context:" not in prompt
    with_context = completion_prompt(Q_FULL, "\nSome evidence.\n")
    assert with_context.endswith("Answer:")
    assert COMPLETION_EXAMPLE + "Context:\nSome evidence.\n\n" + format_question(Q_FULL) in (
        with_context
    )
    assert completion.render(Q_FULL, "Some evidence.") == with_context
    assert "<|im_start|>" not in with_context


def test_chat_renderer_refuses_a_model_without_template():
    with pytest.raises(ValueError, match="no chat template"):
        Renderer("chat", SimpleNamespace(metadata={}))
