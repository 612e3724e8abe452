"""Measuring quality: retrieval hit@k and MRR against question files."""
