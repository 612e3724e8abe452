"""Chunk storage and hybrid retrieval (BM25 with stemming + dense vectors + link graph)."""
