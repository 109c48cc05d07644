"""Chunking, BM25, the persistent dense index, fusion and retrieval quality."""

from __future__ import annotations

import itertools
import json
import math
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from safescale.data.corpus import Passage
from safescale.retrieval.chunking import Chunk, chunk_passages, word_windows
from safescale.retrieval.embedder import MiniLMEmbedder, load_tokenizer
from safescale.retrieval.lexical import BM25Index, tokenize
from safescale.retrieval.search import Retriever, retrieval_quality, rrf

# --------------------------------------------------------------------------- word_windows


def window_starts(n: int, size: int, overlap: int) -> list[int]:
    """Starts of the windows when every token is a word of its own."""
    return [s for s, _ in word_windows(list(range(n)), size, overlap)]


def test_window_starts_known_values():
    assert window_starts(10, 4, 1) == [0, 3, 6]  # 0-4, 3-7, 6-10
    assert window_starts(11, 4, 1) == [0, 3, 6, 9]  # 6-10 misses token 10
    assert window_starts(5, 4, 0) == [0, 4]
    assert window_starts(20, 8, 3) == [0, 5, 10, 15]


@pytest.mark.parametrize("n", [0, 1, 7, 8])
def test_text_no_longer_than_a_window_gives_one_window(n):
    assert window_starts(n, 8, 3) == [0]


@pytest.mark.parametrize(("size", "overlap"), [(4, 4), (4, 5), (1, 1)])
def test_overlap_not_smaller_than_size_raises(size, overlap):
    with pytest.raises(ValueError, match="overlap"):
        window_starts(100, size, overlap)


@given(
    n=st.integers(min_value=1, max_value=400),
    size=st.integers(min_value=1, max_value=40),
    data=st.data(),
)
def test_windows_cover_the_text_and_share_exactly_overlap_tokens(n, size, data):
    overlap = data.draw(st.integers(min_value=0, max_value=size - 1))
    windows = word_windows(list(range(n)), size, overlap)
    assert windows[0][0] == 0
    # every window but the last is a full window inside the text
    assert all(end - s == size for s, end in windows[:-1])
    # the last window reaches the end of the text ...
    assert windows[-1][1] == n
    # ... and is needed: the one before it does not already reach the end
    if len(windows) > 1:
        assert windows[-2][1] < n
    # consecutive windows share exactly `overlap` tokens
    for (s0, e0), (s1, _e1) in itertools.pairwise(windows):
        assert e0 - s1 == overlap
        assert s1 > s0


def test_windows_move_to_word_boundaries():
    # words of 1, 3, 2, 1, 3 pieces: tokens 0 | 1 2 3 | 4 5 | 6 | 7 8 9
    word_ids = [0, 1, 1, 1, 2, 2, 3, 4, 4, 4]
    # plain windows of 5 sharing 2 would be 0-5, 3-8, 6-10: both cuts split a word
    assert word_windows(word_ids, 5, 2) == [(0, 4), (1, 6), (4, 7), (6, 10)]


@given(
    lengths=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=80),
    size=st.integers(min_value=1, max_value=30),
    data=st.data(),
)
def test_word_windows_cover_the_text_and_cut_between_words(lengths, size, data):
    overlap = data.draw(st.integers(min_value=0, max_value=size - 1))
    word_ids = [w for w, k in enumerate(lengths) for _ in range(k)]
    n = len(word_ids)
    windows = word_windows(word_ids, size, overlap)
    assert windows[0][0] == 0 and windows[-1][1] == n
    assert all(0 < e - s <= size for s, e in windows)
    for (s0, e0), (s1, e1) in itertools.pairwise(windows):
        assert s0 < s1 <= e0 < e1  # progress, no gap
    starts_of_words = {0, n} | {i for i in range(1, n) if word_ids[i] != word_ids[i - 1]}
    for s, e in windows:
        # a cut inside a word only where a word alone is longer than a window
        if s not in starts_of_words or e not in starts_of_words:
            assert max(lengths) > size, (s, e)


# --------------------------------------------------------------------------- chunk_passages

WORDS = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen", "twenty",
]  # fmt: skip
MESSY = (
    "Ménétrier  disease:\nThe STOMACH’s rugae are enlarged (giant folds); CT-guided biopsy "
    "confirms it. Hyperplasia, foveolar. Protein-losing gastropathy → hypoalbuminaemia!"
)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def test_chunks_of_single_token_words_are_the_expected_windows(tokenizer):
    # each word is one word piece, so windows [0,8) [5,13) [10,18) [15,20) are exact
    passage = Passage("p1", "Numbers", " ".join(WORDS))
    chunks = chunk_passages([passage], tokenizer, size=8, overlap=3)
    expected = [WORDS[0:8], WORDS[5:13], WORDS[10:18], WORDS[15:20]]
    assert [c.text for c in chunks] == [" ".join(ws) for ws in expected]
    assert [c.n_tokens for c in chunks] == [8, 8, 8, 5]
    assert [c.chunk_id for c in chunks] == ["p1#0", "p1#1", "p1#2", "p1#3"]
    # consecutive chunks share exactly the 3 overlap words
    for a, b in itertools.pairwise(chunks):
        assert a.text.split()[-3:] == b.text.split()[:3]


def test_chunks_keep_original_characters_ids_and_passage_mapping(tokenizer):
    passages = [
        Passage("gastro-7", "Ménétrier disease", MESSY),
        Passage("short", "", "Tiny passage."),
        Passage("empty", "Nothing", "   "),
    ]
    chunks = chunk_passages(passages, tokenizer, size=10, overlap=4)
    by_passage: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_passage.setdefault(c.passage_id, []).append(c)
    assert set(by_passage) == {"gastro-7", "short"}  # whitespace-only text has no tokens
    texts = {p.passage_id: p for p in passages}
    for pid, group in by_passage.items():
        assert [c.chunk_id for c in group] == [f"{pid}#{j}" for j in range(len(group))]
        for c in group:
            assert c.text in texts[pid].text  # original characters (accents, case, ’)
            assert c.title == texts[pid].title
            assert 0 < c.n_tokens <= 10
    gastro = by_passage["gastro-7"]
    assert len(gastro) > 2
    assert gastro[0].text.startswith("Ménétrier")  # not lower-cased or accent-stripped
    assert MESSY.startswith(gastro[0].text)
    assert MESSY.endswith(gastro[-1].text)  # the last window reaches the end ...
    assert gastro[-1].text.endswith("minaemia!")  # ... including the final punctuation
    assert by_passage["short"] == [Chunk("short#0", "short", "", "Tiny passage.", 3)]
    assert gastro[0].indexed_text == "Ménétrier disease. " + gastro[0].text
    assert by_passage["short"][0].indexed_text == "Tiny passage."


def test_chunk_ids_are_stable_across_runs(tokenizer):
    passages = [Passage("a", "T", MESSY), Passage("b", "U", " ".join(WORDS))]
    first = chunk_passages(passages, tokenizer, 12, 2)
    again = chunk_passages(list(reversed(passages)), load_tokenizer(), 12, 2)
    assert {c.chunk_id: c for c in first} == {c.chunk_id: c for c in again}


# --------------------------------------------------------------------------- BM25


def test_tokenize_lowercases_drops_stopwords_keeps_negations():
    assert tokenize("The CT of the Head, 2x!") == ["ct", "head", "2x"]
    assert tokenize("No contrast is not needed") == ["no", "contrast", "not", "needed"]
    assert tokenize("Which is the most appropriate NEXT step?") == ["appropriate", "step"]


BM25_CHUNKS = [
    Chunk("pe#0", "pe", "Pulmonary embolism", "CT angiography shows a filling defect.", 8),
    Chunk("renal#0", "renal", "Renal colic", "Non-contrast CT detects kidney stones.", 8),
    Chunk("appy#0", "appy", "Appendicitis", "Ultrasound first in children.", 6),
    Chunk("stroke#0", "stroke", "Stroke", "Diffusion MRI shows acute infarction.", 7),
    Chunk("wrist#0", "wrist", "Wrist", "Radiographs show a distal radius fracture.", 8),
    Chunk("dup-z#0", "dup-z", "Gallbladder", "Murphy sign with gallstones.", 6),
    Chunk("dup-a#0", "dup-a", "Gallbladder", "Murphy sign with gallstones.", 6),
]


@pytest.fixture(scope="module")
def bm25() -> BM25Index:
    return BM25Index(BM25_CHUNKS)


@pytest.mark.parametrize(
    ("query", "top"),
    [
        ("kidney stones", "renal#0"),
        ("ultrasound in children with appendicitis", "appy#0"),
        ("filling defect on angiography", "pe#0"),
        ("acute infarction on diffusion MRI", "stroke#0"),
        ("radius fracture", "wrist#0"),
    ],
)
def test_bm25_top_1_on_known_answers(bm25, query, top):
    hits = bm25.search(query, 3)
    assert hits[0][0] == top
    assert hits[0][1] > hits[1][1]


def test_bm25_score_matches_okapi_formula(bm25):
    # "kidney" occurs once, in one chunk: idf = ln((N - 1 + .5) / 1.5), k1 = 1.5, b = .75
    lengths = [len(tokenize(c.indexed_text)) for c in BM25_CHUNKS]
    n, avgdl, dl = len(lengths), sum(lengths) / len(lengths), lengths[1]
    idf = math.log((n - 1 + 0.5) / 1.5)
    expected = idf * 2.5 / (1 + 1.5 * (0.25 + 0.75 * dl / avgdl))
    cid, score = bm25.search("kidney", 1)[0]
    assert cid == "renal#0"
    assert score == pytest.approx(expected, rel=1e-9)


def test_bm25_ties_follow_corpus_order_not_id(bm25):
    hits = bm25.search("gallstones murphy", 2)
    assert [cid for cid, _ in hits] == ["dup-z#0", "dup-a#0"]
    assert hits[0][1] == hits[1][1] > 0
    # no matching term: all scores 0, returned in corpus order, k respected
    assert [cid for cid, _ in bm25.search("zebra", 3)] == ["pe#0", "renal#0", "appy#0"]
    assert len(bm25.search("kidney", 100)) == len(BM25_CHUNKS)


def test_bm25_save_load_round_trip(bm25, tmp_path):
    path = tmp_path / "bm25.pkl"
    bm25.save(path)
    loaded = BM25Index.load(path)
    assert isinstance(loaded, BM25Index)
    assert loaded.chunk_ids == bm25.chunk_ids
    for query in ("kidney stones", "gallstones", "CT", "fracture of the radius", "zebra"):
        assert loaded.search(query, 5) == bm25.search(query, 5)


# --------------------------------------------------------------------------- dense

DENSE_PASSAGES = {
    "kidney": ("Renal colic", "Non-contrast CT detects urinary calculi in flank pain."),
    "pe": ("Pulmonary embolism", "CT angiography shows filling defects in pulmonary arteries."),
    "appy": ("Appendicitis", "Ultrasound shows a non-compressible appendix in children."),
    "stroke": ("Stroke", "Diffusion-weighted MRI reveals acute cerebral infarction early."),
    "wrist": ("Fractures", "Plain radiographs identify a distal radius fracture after a fall."),
    "cook": ("Cooking", "Simmer the tomato sauce slowly with garlic and basil for an hour."),
    "football": ("Football", "The striker scored twice in the second half to win the cup."),
    "weather": ("Weather", "Heavy rain and strong winds are expected along the coast tomorrow."),
}
DENSE_CHUNKS = [Chunk(f"{pid}#0", pid, t, x, 12) for pid, (t, x) in DENSE_PASSAGES.items()]
PARAPHRASES = [
    ("a blood clot blocking the lungs' vessels", "pe#0"),
    ("a broken bone in the forearm", "wrist#0"),
    ("which team won the match", "football#0"),
    ("preparing a meal in the kitchen", "cook#0"),
    ("the forecast for a storm", "weather#0"),
    ("brain attack imaging", "stroke#0"),
]

REOPEN_SCRIPT = textwrap.dedent(
    """
    import json, socket, sys

    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(repr(address))
        raise OSError("network access during a dense-index test")

    socket.socket.connect = refuse
    from safescale.retrieval.dense import DenseIndex

    index = DenseIndex(sys.argv[1])
    queries = json.loads(sys.argv[2])
    hits = [index.search(q, 8) for q in queries]
    print(json.dumps({"count": index.count, "hits": hits, "attempts": attempts}))
    """
)


@pytest.fixture(scope="module")
def no_network():
    """HF_HUB_OFFLINE=1 and every socket connect refused (and recorded)."""
    attempts: list[str] = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(repr(address))
        raise OSError(f"network access during a dense-index test: {address!r}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", refuse)
        yield attempts
    assert attempts == [], f"something tried the network: {attempts}"


@pytest.fixture(scope="module")
def dense_path(tmp_path_factory, no_network):
    from safescale.retrieval.dense import build_dense_index

    path = tmp_path_factory.mktemp("chroma") / "index"
    build_dense_index(DENSE_CHUNKS, path, threads=1)
    return path


@pytest.fixture(scope="module")
def dense(dense_path, no_network):
    from safescale.retrieval.dense import DenseIndex

    return DenseIndex(dense_path)


def test_network_is_really_refused_in_dense_tests(no_network):
    with socket.socket() as s, pytest.raises(OSError, match="network access"):
        s.connect(("127.0.0.1", 9))
    assert no_network.pop() == repr(("127.0.0.1", 9))
    assert os.environ["HF_HUB_OFFLINE"] == "1"


@pytest.mark.parametrize(("query", "expected"), PARAPHRASES)
def test_dense_finds_paraphrase_without_shared_words(dense, no_network, query, expected):
    target = next(c for c in DENSE_CHUNKS if c.chunk_id == expected)
    assert not set(tokenize(query)) & set(tokenize(target.indexed_text))  # no lexical help
    hits = dense.search(query, 3)
    assert hits[0][0] == expected
    assert len(hits) == 3
    assert hits[0][1] > hits[1][1] >= hits[2][1]
    assert no_network == []


def test_dense_scores_are_cosine_similarities_of_the_embeddings(dense, no_network):
    query = "a broken bone in the forearm"
    hits = dense.search(query, 4)
    embedder = MiniLMEmbedder(threads=1)
    q_vec = embedder.embed([query])[0]
    texts = {c.chunk_id: c.indexed_text for c in DENSE_CHUNKS}
    docs = embedder.embed([texts[cid] for cid, _ in hits])
    np.testing.assert_allclose([s for _, s in hits], docs @ q_vec, atol=1e-4)


def test_dense_queries_use_the_index_embedder_settings(tmp_path, no_network):
    """A query is truncated exactly as the documents were, whatever the reader's default."""
    from safescale.retrieval.dense import DenseIndex, build_dense_index

    build_dense_index(DENSE_CHUNKS, tmp_path / "short", threads=1, max_length=16)
    index = DenseIndex(tmp_path / "short", threads=1)
    assert index.embedder_config["max_length"] == 16
    query = "a long question " * 20 + "about a broken bone in the forearm"
    hits = index.search(query, 4)
    embedder = MiniLMEmbedder(threads=1, max_length=16)
    texts = {c.chunk_id: c.indexed_text for c in DENSE_CHUNKS}
    docs = embedder.embed([texts[cid] for cid, _ in hits])
    np.testing.assert_allclose([s for _, s in hits], docs @ embedder.embed([query])[0], atol=1e-4)


def test_dense_search_caps_k_at_collection_size(dense):
    assert dense.count == len(DENSE_CHUNKS)
    hits = dense.search("kidney stones", 50)
    assert sorted(cid for cid, _ in hits) == sorted(c.chunk_id for c in DENSE_CHUNKS)
    assert all(-1.0 <= s <= 1.0 + 1e-6 for _, s in hits)


def test_dense_index_reopened_in_a_new_process_gives_identical_results(
    dense, dense_path, no_network
):
    queries = [q for q, _ in PARAPHRASES]
    here = [dense.search(q, 8) for q in queries]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", REOPEN_SCRIPT, str(dense_path), json.dumps(queries)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    there = json.loads(proc.stdout.strip().splitlines()[-1])
    assert there["attempts"] == []
    assert there["count"] == len(DENSE_CHUNKS)
    assert [[(cid, s) for cid, s in hits] for hits in there["hits"]] == here


def test_embedder_is_normalised_and_independent_of_batching(no_network):
    texts = ["short", "a much longer sentence about a chest radiograph with a pneumothorax"]
    batched = MiniLMEmbedder(threads=1, batch_size=2).embed(texts)
    single = np.vstack([MiniLMEmbedder(threads=1, batch_size=1).embed([t]) for t in texts])
    assert batched.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, single, atol=1e-4)  # padding is masked out
    assert float(batched[0] @ batched[1]) < 0.9


def test_hybrid_retriever_fuses_bm25_and_dense(dense_path, tmp_path, no_network):
    bm25_path = tmp_path / "bm25.pkl"
    BM25Index(DENSE_CHUNKS).save(bm25_path)
    query = "CT for flank pain from urinary calculi"
    lexical = Retriever("bm25", bm25_path, dense_path).search(query, 100)
    semantic = Retriever("dense", bm25_path, dense_path).search(query, 100)
    hybrid = Retriever("hybrid", bm25_path, dense_path, rrf_k=10).search(query, 3)
    expected = rrf([[c for c, _ in lexical], [c for c, _ in semantic]], k=10)[:3]
    assert hybrid == expected
    assert hybrid[0][0] == "kidney#0"
    with pytest.raises(ValueError, match="unknown retriever"):
        Retriever("sparse", bm25_path, dense_path)


# --------------------------------------------------------------------------- fusion


def test_rrf_ids_high_in_both_lists_win_with_exact_scores():
    fused = rrf([["x", "y", "z"], ["y", "w", "x"]], k=60)
    assert [cid for cid, _ in fused] == ["y", "x", "w", "z"]
    scores = dict(fused)
    assert scores["y"] == pytest.approx(1 / 62 + 1 / 61, abs=1e-15)
    assert scores["x"] == pytest.approx(1 / 61 + 1 / 63, abs=1e-15)
    assert scores["w"] == pytest.approx(1 / 62, abs=1e-15)
    assert scores["z"] == pytest.approx(1 / 63, abs=1e-15)


def test_rrf_constant_k_changes_the_scores():
    assert rrf([["a", "b"]], k=0) == [("a", 1.0), ("b", 0.5)]
    assert rrf([["a"], ["a"], ["b"]], k=1) == [("a", 1.0), ("b", 0.5)]


def test_rrf_ties_are_broken_by_id():
    assert rrf([["b", "d"], ["a", "c"]], k=60) == [
        ("a", 1 / 61),
        ("b", 1 / 61),
        ("c", 1 / 62),
        ("d", 1 / 62),
    ]
    assert rrf([]) == []


# --------------------------------------------------------------------------- quality

CHUNK_PASSAGE = {
    "c1#0": "p1",
    "c1#1": "p1",
    "c2#0": "p2",
    "c3#0": "p3",
    "c4#0": "p4",
    "c5#0": "p5",
}


def test_retrieval_quality_recall_and_mrr_by_hand():
    rankings = {
        "q1": ["c2#0", "c3#0", "c4#0"],  # gold p2 at rank 1
        "q2": ["c3#0", "c2#0", "c1#1"],  # gold p1 first at rank 3 (second chunk of p1)
        "q3": ["c4#0", "c5#0", "c3#0"],  # gold p9 never retrieved
        "q4": ["c3#0", "c1#0"],  # gold p3 or p1: rank 1
        "q5": ["c1#0"],  # no gold: not counted
    }
    gold = {"q1": ["p2"], "q2": ["p1"], "q3": ["p9"], "q4": ["p3", "p1"], "q5": []}
    out = retrieval_quality(rankings, CHUNK_PASSAGE, gold, ks=(1, 2, 3))
    assert out["n_questions"] == 4
    assert out["recall@1"] == pytest.approx(2 / 4)
    assert out["recall@2"] == pytest.approx(2 / 4)
    assert out["recall@3"] == pytest.approx(3 / 4)
    assert out["mrr"] == pytest.approx((1 + 1 / 3 + 0 + 1) / 4)
    assert set(out) == {"n_questions", "recall@1", "recall@2", "recall@3", "mrr"}


def test_retrieval_quality_without_gold_is_nan():
    out = retrieval_quality({"q1": ["c1#0"]}, CHUNK_PASSAGE, {}, ks=(1, 5))
    assert out["n_questions"] == 0
    assert all(math.isnan(out[key]) for key in ("recall@1", "recall@5", "mrr"))
