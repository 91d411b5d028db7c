"""The ways the retrieval statement ranks, for tests that must hold in each: few visible
documents (exact), many (the HNSW walk and the postings), and many without postings (every
visible match scored through the GIN index)."""

PATHS = {
    "exact": {},
    "index, postings": {"SEARCH_EXACT_BELOW": 0, "SEARCH_VECTOR_EXACT_BELOW": 0},
    "index, no postings": {
        "SEARCH_EXACT_BELOW": 0,
        "SEARCH_VECTOR_EXACT_BELOW": 0,
        "SEARCH_POSTINGS": False,
    },
}


def path_take(settings, path: str) -> None:
    """Make searches rank by `path` (pytest-django's settings fixture)."""
    for name, value in PATHS[path].items():
        setattr(settings, name, value)
