"""The benchmarks' own scoring algorithms, re-implemented (no upstream code copied) and checked digit for digit
against the official scripts on the committed golden fixtures (tests/golden/, tests/test_official.py).

Definitions and sources: docs/benchmarks.md. Pure Python; the NLP resources some of them need (NLTK data, a
spaCy model) are loaded lazily by benchmarks.official.nlp, which refuses to score when one is missing.
"""
