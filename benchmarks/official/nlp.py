"""The NLP resources the official AMBER and CHAIR scripts use, loaded once, refused when missing.

Official AMBER extracts nouns with NLTK (`word_tokenize` -> Punkt, `pos_tag` -> the averaged-perceptron tagger,
`WordNetLemmatizer` -> WordNet) and tests near-synonyms with spaCy `en_core_web_lg` similarity > 0.8; CHAIR
tokenises with NLTK `word_tokenize`. A missing resource is a HarnessError naming it and how to install it:
never a silent fallback to another matcher, which would give different numbers under the same name.
`describe()` is what a record keeps about them (docs/benchmarks.md § NLP resources).
"""

from __future__ import annotations

from functools import lru_cache

from harness.errors import HarnessError

# nltk.data paths of what word_tokenize / pos_tag / WordNetLemmatizer load in NLTK >= 3.9
NLTK_RESOURCES = {"punkt_tab": "tokenizers/punkt_tab/english/",
                  "averaged_perceptron_tagger_eng": "taggers/averaged_perceptron_tagger_eng/",
                  "wordnet": "corpora/wordnet"}
DEFAULT_SPACY_MODEL = "en_core_web_lg"      # AMBER's README and inference.py
DEFAULT_SIMILARITY = 0.8                    # inference.py --similarity_score


def require_nltk(*names: str) -> None:
    """HarnessError unless every named NLTK resource is installed."""
    try:
        import nltk
    except ImportError:
        raise HarnessError("official scoring needs NLTK: pip install nltk") from None
    missing = []
    for name in names:
        try:
            nltk.data.find(NLTK_RESOURCES[name])
        except LookupError:
            try:        # a zipped copy (nltk_data packages ship .zip) is found under the name + .zip
                nltk.data.find(NLTK_RESOURCES[name].rstrip("/") + ".zip")
            except LookupError:
                missing.append(name)
    if missing:
        raise HarnessError(f"official scoring needs the NLTK data {', '.join(missing)} (not found in "
                           f"{nltk.data.path}); install with: python -m nltk.downloader {' '.join(missing)}")


@lru_cache(maxsize=4)
def spacy_model(name: str = DEFAULT_SPACY_MODEL):
    try:
        import spacy
    except ImportError:
        raise HarnessError(f"official AMBER scoring needs spaCy and the model {name}: pip install spacy && "
                           f"python -m spacy download {name}") from None
    try:
        nlp = spacy.load(name)
    except OSError:
        raise HarnessError(f"official AMBER scoring needs the spaCy model {name!r}, which is not installed "
                           f"(python -m spacy download {name}); a different model gives different numbers, so "
                           "none is substituted (choose one explicitly to score with it, and it is recorded)") from None
    if not nlp.vocab.vectors.shape[0]:
        raise HarnessError(f"spaCy model {name!r} has no word vectors: its similarity is not AMBER's")
    return nlp


def word_tokenize(text: str) -> list[str]:
    import nltk

    require_nltk("punkt_tab")
    return nltk.word_tokenize(text)


def amber_nouns(text: str) -> list[str]:
    """AMBER's extract_nouns: tokens tagged NN* by NLTK's tagger, lemmatised by WordNet (as nouns)."""
    import nltk

    require_nltk("punkt_tab", "averaged_perceptron_tagger_eng", "wordnet")
    lemmatize = _lemmatizer().lemmatize
    return [lemmatize(word) for word, tag in nltk.pos_tag(nltk.word_tokenize(text)) if tag.startswith("NN")]


@lru_cache(maxsize=1)
def _lemmatizer():
    from nltk.stem import WordNetLemmatizer

    return WordNetLemmatizer()


def similarity_test(model: str = DEFAULT_SPACY_MODEL, threshold: float = DEFAULT_SIMILARITY):
    """similar(a, b) -> spaCy similarity(a, b) > threshold, as inference.py's check_synonyms_word."""
    nlp = spacy_model(model)

    @lru_cache(maxsize=None)
    def doc(word: str):
        return nlp(word)

    @lru_cache(maxsize=None)
    def similar(a: str, b: str) -> bool:
        return doc(a).similarity(doc(b)) > threshold
    return similar


def describe(spacy_name: str | None = None) -> dict:
    """Versions of what produced the numbers (NLTK, its data paths, the spaCy model and its version)."""
    out: dict = {}
    try:
        import nltk
        out["nltk"] = nltk.__version__
    except ImportError:
        pass
    if spacy_name:
        nlp = spacy_model(spacy_name)
        out["spacy_model"] = f"{nlp.meta.get('lang')}_{nlp.meta.get('name')}-{nlp.meta.get('version')}"
    return out
