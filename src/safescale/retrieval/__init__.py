"""Chunking, lexical and dense indexes, fusion and retrieval quality."""
