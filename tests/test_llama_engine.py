"""The real llama.cpp build on a real GGUF: no SIGILL, exact probabilities, determinism."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import headache_question, model_path

from safescale.inference.llama_engine import Decoding, LlamaEngine
from safescale.inference.parsing import letter_is_final
from safescale.inference.sampling import SamplingSettings, derive_seed, token_distribution
from safescale.prompting.templates import Renderer

Q = headache_question(5)


@pytest.fixture(scope="module")
def engine(smollm2_path):
    return LlamaEngine(smollm2_path, n_ctx=1024, threads=1)


def prompt_tokens(engine):
    r = Renderer("chat", engine.llm)
    return r.tokenize(r.render(Q, "Thunderclap headache: non-contrast CT first. " * 4))


def test_smoke_prompt_longer_than_32_tokens(engine):
    tokens = prompt_tokens(engine)
    assert len(tokens) > 32  # the AMX crash appeared on the first batch of >= 32 tokens
    out = engine.answer(tokens, Q.letters, Decoding(n_samples=4), [1, 2, 3, 4])
    assert out["greedy"].raw.strip() != ""
    probs = out["letter_probs"]
    assert set(probs) == set("ABCDE") and abs(sum(probs.values()) - 1) < 1e-9
    assert 0 < out["letter_mass"] <= 1


def vocabulary_letter_ids(llm, letter: str) -> set[int]:
    """Tokens whose vocabulary entry reads as the letter with an optional leading
    space and opening bracket, from the raw vocabulary (not the engine's list)."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    spellings = {f"{space}{bracket}{letter}" for space in ("", " ") for bracket in ("", "(", "[")}
    ids = set()
    for token in range(llm.n_vocab()):
        text = llama_cpp.llama_vocab_get_text(vocab, token).decode("utf-8", errors="replace")
        byte = re.fullmatch(r"<0x([0-9A-F]{2})>", text)  # SentencePiece byte fallback
        text = chr(int(byte.group(1), 16)) if byte else text
        if text.replace("\u0120", " ").replace("\u2581", " ") in spellings:
            ids.add(token)
    return ids


def test_letter_probs_match_full_softmax(engine):
    tokens = prompt_tokens(engine)
    logits = engine.prime(tokens)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    probs, mass = engine.letter_probabilities(logits, Q.letters)
    ids = {letter: sorted(vocabulary_letter_ids(engine.llm, letter)) for letter in Q.letters}
    assert all(ids.values())
    assert mass == pytest.approx(sum(p[ids[x]].sum() for x in Q.letters), rel=1e-6)
    assert probs["A"] == pytest.approx(p[ids["A"]].sum() / mass, rel=1e-6)


@pytest.mark.slow
def test_bracketed_letter_tokens_count_towards_the_letter():
    """Qwen's vocabulary has "(A" and "[A": their mass belongs to A."""
    path = model_path("qwen2.5-coder-0.5b")
    qwen = LlamaEngine(path, n_ctx=64, threads=1)
    for letter in "AE":
        expected = vocabulary_letter_ids(qwen.llm, letter)
        assert {qwen.token_text(t).strip() for t in expected} >= {letter, f"({letter}"}
        assert set(qwen._letter_ids[letter]) == expected


def test_same_seeds_same_samples_whatever_ran_before(engine, smollm2_path):
    """One prompt evaluation per question; results independent of the engine's history."""
    tokens = prompt_tokens(engine)
    seeds = [derive_seed(42, "m", "c", "q1", i) for i in range(20)]
    before = engine.stats.prompt_tokens_evaluated
    a = engine.answer(
        tokens, Q.letters, Decoding(), seeds, is_final=lambda text: letter_is_final(text, Q.letters)
    )
    assert engine.stats.prompt_tokens_evaluated - before == len(tokens)
    engine.generate_text("Something else entirely, to change the cache.", 5)
    b = engine.answer(
        tokens, Q.letters, Decoding(), seeds, is_final=lambda text: letter_is_final(text, Q.letters)
    )
    assert [s.raw for s in a["samples"]] == [s.raw for s in b["samples"]]
    fresh = LlamaEngine(smollm2_path, n_ctx=1024, threads=1)
    c = fresh.answer(
        tokens, Q.letters, Decoding(), seeds, is_final=lambda text: letter_is_final(text, Q.letters)
    )
    assert [s.raw for s in a["samples"]] == [s.raw for s in c["samples"]]
    assert a["greedy"].raw == c["greedy"].raw


def test_tree_sampling_matches_independent_sampling(engine):
    """Each tree sample equals the sample an independent decoder draws with the same stream."""
    tokens = prompt_tokens(engine)
    settings = SamplingSettings(temperature=0.7)
    seeds = [11, 12, 13, 14, 15, 16]
    logits = engine.prime(tokens)
    tree = engine.sample_tree(len(tokens), logits, seeds, 4, settings)
    for seed, gen in zip(seeds, tree, strict=True):
        rng = np.random.default_rng(seed)
        out, step_logits = [], engine.prime(tokens)
        for _ in range(4):
            p = token_distribution(step_logits, settings)
            tok = int(
                min(
                    np.searchsorted(np.cumsum(p), rng.random() * np.cumsum(p)[-1], side="right"),
                    len(p) - 1,
                )
            )
            if engine._is_stop(tok):
                break
            out.append(tok)
            if len(out) == 4:
                break
            step_logits = engine._eval_at(len(tokens) + len(out) - 1, [tok])
        assert gen.tokens == out


def test_pure_temperature_is_the_default():
    s = SamplingSettings()
    assert (s.top_k, s.top_p, s.min_p) == (0, 1.0, 0.0)
    logits = np.array([2.0, 1.0, 0.0, -1.0])
    p = token_distribution(logits, s)
    expected = np.exp(logits / 0.7) / np.exp(logits / 0.7).sum()
    np.testing.assert_allclose(p, expected)
    filtered = token_distribution(logits, SamplingSettings(top_k=2))
    assert filtered[2] == 0 and filtered[3] == 0


@pytest.mark.parametrize("n_options", [4, 5])
def test_early_stopped_samples_parse_like_fully_decoded_ones(engine, n_options):
    """The in-process early stop never changes a sample's parsed letter."""
    from safescale.inference.parsing import parse_letter

    question = headache_question(n_options)
    r = Renderer("chat", engine.llm)
    tokens = r.tokenize(r.render(question, ""))
    settings = SamplingSettings(temperature=1.5)  # varied openings, letters outside included
    seeds = list(range(100, 140))
    logits = engine.prime(tokens)
    early = engine.sample_tree(
        len(tokens),
        logits,
        seeds,
        10,
        settings,
        is_final=lambda text: letter_is_final(text, question.letters),
    )
    full = engine.sample_tree(len(tokens), engine.prime(tokens), seeds, 10, settings)
    for cut, whole in zip(early, full, strict=True):
        assert whole.tokens[: len(cut.tokens)] == cut.tokens
        assert parse_letter(cut.raw, question.options) == parse_letter(whole.raw, question.options)


def test_template_head_is_reused_without_changing_results(smollm2_path):
    """The head is evaluated once and kept; each prompt's logits and samples are the
    same whatever ran before, and equal to a fresh engine's with the same split."""
    from safescale.inference.llama_engine import head_length

    def run(order: list[int]) -> dict[int, tuple]:
        eng = LlamaEngine(smollm2_path, n_ctx=1024, threads=1)
        r = Renderer("chat", eng.llm)
        head = eng.tokenize(r.head())
        prompts = [
            r.tokenize(r.render(Q, None)),
            r.tokenize(r.render(Q, "Thunderclap headache: non-contrast CT first. " * 3)),
            r.tokenize(r.render(Q, "Migraine with aura: no imaging needed. " * 2)),
        ]
        out = {}
        for i in order:
            n = head_length(head, prompts[i])
            assert 10 < n < len(prompts[i])  # system prompt and user-turn start are shared
            res = eng.answer(
                prompts[i], Q.letters, Decoding(n_samples=5), [7, 8, 9, 10, 11], splits=[n]
            )
            out[i] = (res["letter_probs"], res["greedy"].raw, [s.raw for s in res["samples"]])
        evaluated = eng.stats.prompt_tokens_evaluated
        return out, evaluated, sum(len(p) for p in prompts), n

    forward, evaluated, total, n_head = run([0, 1, 2])
    backward, _, _, _ = run([2, 1, 0])
    alone, _, _, _ = run([1])
    assert forward == backward
    assert forward[1] == alone[1]
    assert evaluated == total - 2 * n_head  # the head was read once for three prompts


def test_head_length_stops_at_the_first_difference_and_leaves_a_token():
    from safescale.inference.llama_engine import head_length

    assert head_length([1, 2, 3], [1, 2, 4, 5]) == 2
    assert head_length([1, 2, 3], [1, 2, 3]) == 2
    assert head_length([], [1, 2]) == 0


def test_ranked_evidence_is_shared_across_prompts_without_changing_results(smollm2_path):
    """A top-2 prompt's evidence is the start of a top-4 prompt's: answered one after
    the other, the second evaluates only what follows it, and every result equals
    that of the prompt answered alone (splits depend on the prompt only)."""
    from safescale.inference.predict import prompt_splits
    from safescale.prompting.contexts import format_chunks
    from safescale.retrieval.chunking import Chunk

    chunks = [
        Chunk(f"c{i}", f"p{i}", f"Title {i}", f"Evidence sentence number {i}. " * 6, 0)
        for i in range(1, 5)
    ]

    def run(order: list[int]) -> tuple[dict[int, tuple], int, list[int]]:
        eng = LlamaEngine(smollm2_path, n_ctx=1024, threads=1)
        r = Renderer("chat", eng.llm)
        head = eng.tokenize(r.head())
        texts = [r.render(Q, format_chunks(chunks[:2])), r.render(Q, format_chunks(chunks))]
        out, lengths = {}, []
        for i in order:
            tokens = eng.tokenize(texts[i])
            splits = prompt_splits(eng, texts[i], tokens, Q, head)
            assert len(splits) == 1 + (2 if i == 0 else 4)  # head, entries 2.., question
            res = eng.answer(tokens, Q.letters, Decoding(n_samples=4), [1, 2, 3, 4], splits=splits)
            out[i] = (res["letter_probs"], res["greedy"].raw, [s.raw for s in res["samples"]])
            lengths.append(len(tokens))
        return out, eng.stats.prompt_tokens_evaluated, lengths

    short_first, evaluated, lengths = run([0, 1])
    long_first, evaluated_back, _ = run([1, 0])
    alone_long, _, _ = run([1])
    alone_short, _, _ = run([0])
    assert short_first == long_first
    assert short_first[1] == alone_long[1] and short_first[0] == alone_short[0]
    assert evaluated < sum(lengths) - 100  # two evidence entries were read once
    assert evaluated_back < sum(lengths) - 100


def test_evidence_entry_offsets_mark_each_entry_after_the_first_and_the_question():
    from safescale.prompting.contexts import format_chunks
    from safescale.prompting.templates import completion_prompt, evidence_entry_offsets
    from safescale.retrieval.chunking import Chunk

    chunks = [Chunk(f"c{i}", f"p{i}", f"T{i}", f"text {i}", 0) for i in range(1, 4)]
    prompt = completion_prompt(Q, format_chunks(chunks))
    offsets = evidence_entry_offsets(prompt, Q)
    assert [prompt[o : o + 4] for o in offsets] == ["[2] ", "[3] ", "Ques"]
    assert evidence_entry_offsets(completion_prompt(Q, "plain clean evidence"), Q) == []
    assert evidence_entry_offsets(completion_prompt(Q, None), Q) == []


def test_the_agent_opening_is_read_once_and_replies_do_not_change(smollm2_path):
    """Every conversation starts with the same opening: it is evaluated once per
    engine, and each conversation's replies equal those of a fresh engine."""
    from safescale.inference.llama_engine import ChatGenerator

    opening = [{"role": "system", "content": "Reply with one word. " * 8}]

    def ask(generate: ChatGenerator, text: str) -> str:
        generate.reset()
        return generate([*opening, {"role": "user", "content": text}], 6)

    def make() -> ChatGenerator:
        eng = LlamaEngine(smollm2_path, n_ctx=1024, threads=1)
        r = Renderer("chat", eng.llm)
        return ChatGenerator(eng, r, reuse_prefix=True, opening=r.opening(opening))

    both = make()
    first, second = ask(both, "Name a colour."), ask(both, "Name a fruit.")
    usage = both.usage()
    assert usage["prompt_tokens_evaluated"] < usage["prompt_tokens"] - 40
    assert ask(make(), "Name a fruit.") == second
    assert ask(make(), "Name a colour.") == first


def test_samples_reuse_the_greedy_paths_logits_without_changing_any_sample(engine):
    """answer() hands the greedy path's logits to the sample tree; every sample and the
    greedy answer equal those decoded with no reuse, with fewer decode steps.  Hot
    sampling and six tokens make deep, branching trees that leave the greedy path and
    return to it (the cache must hold a path before its known logits are used)."""
    settings = SamplingSettings(temperature=1.3)
    decoding = Decoding(greedy_max_tokens=6, n_samples=12, sample_max_tokens=6, sampling=settings)
    r = Renderer("chat", engine.llm)
    for evidence in (None, "Thunderclap headache: non-contrast CT first. " * 2):
        tokens = r.tokenize(r.render(Q, evidence))
        seeds = [derive_seed("reuse", evidence, i) for i in range(12)]
        before = engine.stats.decode_steps
        out = engine.answer(tokens, Q.letters, decoding, seeds)
        steps_reused = engine.stats.decode_steps - before

        before = engine.stats.decode_steps
        greedy = engine.greedy(len(tokens), engine.prime(tokens), 6)
        samples = engine.sample_tree(len(tokens), engine.prime(tokens), seeds, 6, settings)
        steps_plain = engine.stats.decode_steps - before

        assert out["greedy"].tokens == greedy.tokens
        assert [s.tokens for s in out["samples"]] == [s.tokens for s in samples]
        assert len({tuple(s.tokens) for s in samples}) > 2  # the tree branches
        assert any(s.tokens[:2] == greedy.tokens[:2] for s in samples)  # and reuses
        assert steps_reused < steps_plain
