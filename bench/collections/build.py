"""Collections of other kinds than SciFact, built mechanically from Debian packages fetched
at bench time (`apt-get download`; nothing committed), each with judged queries, in BEIR
format. The queries are derived by rule, never chosen or read while tuning:

- python-headings (documentation, short keyword-like queries): the Python 3.11 manual's
  sections (python3.11-doc), each a document without its own heading; a heading that names
  one section only is the query for it.
- postgres-lead (documentation, long queries): the PostgreSQL 15 manual's sections
  (postgresql-doc-15); a section's first sentence, taken out of it, is the query for the rest.
- wordnet-gcide (entities sought by description, as DBpedia-entity): WordNet's noun synsets
  (wordnet-base), each a document titled by its words with its gloss; the query is another
  dictionary's definition (GCIDE, dict-gcide: Webster's 1913 and others) of a noun WordNet
  gives one sense, without the noun itself.
- manpage-synonyms (short passages asked in other words): the paragraphs of the Linux manual
  pages (manpages, manpages-dev), each titled by its page and section; a paragraph's first
  sentence with every word WordNet has a one-word synonym for replaced by it is the query.
- wordnet-keywords (entities sought by a few words, as DBpedia-entity's keyword queries):
  wordnet-gcide's documents; the query is the first five words of four letters or more of
  the same GCIDE definition.
- perl-questions (short natural questions answered by a passage, as MS MARCO): the sections
  of Perl's manual (perl-doc: the FAQ and every other page), each a document without its
  heading, titled by its page; a heading that is a question naming one section only is the
  query for it.
- perl-keywords (the same questions typed as keywords, as many of MS MARCO's are):
  perl-questions' documents and queries, each query lowercased and without its function
  words (KEYWORDS_DROPPED) and punctuation.

Each collection holds at most CORPUS_SIZE documents (the judged ones and a seeded sample of
the rest) and QUERIES queries (a seeded sample)."""

from __future__ import annotations

import gzip
import random
import re
import shutil
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

from lxml import html

from bench.beir import beir_write

CORPUS_SIZE = 5_000
QUERIES = 300
SEED = 34
APT_GET = shutil.which("apt-get") or "/usr/bin/apt-get"
DPKG_DEB = shutil.which("dpkg-deb") or "/usr/bin/dpkg-deb"

PACKAGES = {
    "python-headings": ["python3.11-doc"],
    "postgres-lead": ["postgresql-doc-15"],
    "wordnet-gcide": ["wordnet-base", "dict-gcide"],
    "manpage-synonyms": ["manpages", "manpages-dev", "wordnet-base"],
    "wordnet-keywords": ["wordnet-base", "dict-gcide"],
    "perl-questions": ["perl-doc"],
    "perl-keywords": ["perl-doc"],
}

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")
_WORDS = re.compile(r"[A-Za-z][A-Za-z'-]*")


def packages_unpacked(names: list[str], into: Path) -> Path:
    """The packages' files under `into`/root, downloaded once into `into`/debs."""
    debs, root = into / "debs", into / "root"
    debs.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not list(debs.glob(f"{name}_*.deb")):
            subprocess.run([APT_GET, "download", name], cwd=debs, check=True,
                           capture_output=True)  # fmt: skip
        (deb,) = debs.glob(f"{name}_*.deb")
        marker = root / f".{deb.name}"
        if not marker.exists():
            subprocess.run([DPKG_DEB, "-x", str(deb), str(root)], check=True)
            marker.touch()
    return root


def _words(text: str) -> int:
    return len(text.split())


def _clean(text: str) -> str:
    return " ".join(text.replace("¶", " ").split())


def _html_sections(path: Path) -> Iterator[tuple[str, str, list[str]]]:
    """(page title, heading, text blocks) of each heading of an HTML manual page, a heading's
    text being the paragraphs and list items after it up to the next heading."""
    tree = html.parse(str(path))
    title = _clean(tree.findtext(".//title") or "").split(" — ")[0]  # no " — Python 3.11"
    heading, blocks = None, []
    for element in tree.iter("h1", "h2", "h3", "h4", "p", "li", "dd", "dt"):
        if element.tag in ("h1", "h2", "h3", "h4"):
            if heading is not None:
                yield title, heading, blocks
            heading, blocks = _clean(element.text_content()), []
        elif heading is not None and not element.xpath(".//p"):
            text = _clean(element.text_content())
            if text:
                blocks.append(text)
    if heading is not None:
        yield title, heading, blocks


def _manual_sections(folder: Path) -> list[tuple[str, str, list[str]]]:
    return [
        section
        for page in sorted(folder.rglob("*.html"))
        if "genindex" not in page.name and "search" not in page.name
        for section in _html_sections(page)
    ]


def _headed_sections(
    sections: list[tuple[str, str, list[str]]],
    prefix: str,
    asks: Callable[[str, str], bool],
    name: Callable[[str], str] = str,
) -> tuple[dict, dict, dict]:
    """Each (title, heading, paragraphs) section of 25 words or more a document without its
    heading, titled by its page; its heading, `name`d, the query for it where no other
    section has that heading and `asks(title, heading)`."""
    named = Counter(name(heading).lower() for _, heading, _ in sections)
    corpus, queries, qrels = {}, {}, {}
    for number, (title, heading, blocks) in enumerate(sections):
        text = " ".join(blocks)
        if _words(text) < 25:
            continue
        doc = f"{prefix}{number}"
        corpus[doc] = {"title": title, "text": text}
        query = name(heading)
        if named[query.lower()] == 1 and asks(title, query):
            queries[f"q{doc}"], qrels[f"q{doc}"] = query, {doc: 1}
    return corpus, queries, qrels


def python_headings(root: Path) -> tuple[dict, dict, dict]:
    strip_number = re.compile(r"^[\d.]+\s+")

    def unnumbered(heading: str) -> str:
        return strip_number.sub("", heading)

    return _headed_sections(
        _manual_sections(root / "usr/share/doc/python3.11/html"),
        "py",
        lambda title, query: query != unnumbered(title) and 2 <= _words(query) <= 12,
        unnumbered,
    )


def postgres_lead(root: Path) -> tuple[dict, dict, dict]:
    sections = _manual_sections(root / "usr/share/doc/postgresql-doc-15/html")
    corpus, queries, qrels = {}, {}, {}
    for number, (title, heading, blocks) in enumerate(sections):
        text = " ".join(blocks)
        first, rest = [*_SENTENCE_END.split(text, 1), ""][:2]
        doc = f"pg{number}"
        if 8 <= _words(first) <= 40 and _words(rest) >= 25:
            corpus[doc] = {"title": f"{title}: {heading}", "text": rest}
            queries[f"q{doc}"], qrels[f"q{doc}"] = first, {doc: 1}
        elif _words(text) >= 25:
            corpus[doc] = {"title": f"{title}: {heading}", "text": text}
    return corpus, queries, qrels


def _wordnet_nouns(root: Path) -> Iterator[tuple[str, list[str], str]]:
    """(offset, words, gloss) of each noun synset."""
    for line in (root / "usr/share/wordnet/data.noun").read_text(errors="replace").splitlines():
        if line.startswith("  "):
            continue  # the licence
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        count = int(fields[3], 16)
        words = [fields[4 + 2 * i].replace("_", " ") for i in range(count)]
        yield fields[0], words, gloss.strip()


def _synonyms(root: Path) -> dict[str, str]:
    """A one-word synonym of each word that has one: another word of its most frequent
    sense (the first synset WordNet's index lists for it), any part of speech."""
    synsets: dict[tuple[str, str], list[str]] = {}
    for pos in ("noun", "verb", "adj", "adv"):
        for line in (
            (root / f"usr/share/wordnet/data.{pos}").read_text(errors="replace").splitlines()
        ):
            if line.startswith("  "):
                continue
            fields = line.split(" | ")[0].split()
            count = int(fields[3], 16)
            words = [fields[4 + 2 * i].split("(")[0].lower() for i in range(count)]
            synsets[(pos, fields[0])] = words
    synonym: dict[str, str] = {}
    for pos in ("noun", "verb", "adj", "adv"):
        for line in (
            (root / f"usr/share/wordnet/index.{pos}").read_text(errors="replace").splitlines()
        ):
            if line.startswith("  "):
                continue
            fields = line.split()
            word, offsets = fields[0], fields[-int(fields[2]) :]
            if word in synonym or "_" in word:
                continue
            others = [w for w in synsets.get((pos, offsets[0]), []) if w != word and "_" not in w]
            if others:
                synonym[word] = others[0]
    return synonym


def _gcide_definitions(root: Path) -> Iterator[tuple[str, str]]:
    """(WordNet noun synset, GCIDE definition) of each noun WordNet gives one sense, for each
    of GCIDE's entries of it, the definition without the noun and its other forms."""
    by_word = defaultdict(list)
    for offset, words, _ in _wordnet_nouns(root):
        for word in words:
            by_word[word.lower()].append(f"wn{offset}")
    with gzip.open(root / "usr/share/dictd/gcide.dict.dz", "rt", errors="replace") as dictionary:
        text = dictionary.read()
    entry = re.compile(r"(?m)^([A-Z][a-z]+(?: [a-z]+)?) \\[^\\\n]*\\, n\.(.*?)(?:\n\n|\Z)", re.S)
    for match in entry.finditer(text):
        word, body = match.group(1), match.group(2)
        docs = by_word.get(word.lower(), [])
        if len(docs) != 1:
            continue
        body = re.sub(r"\[[^\]]*\]|--\w[^.]*\.|\{[^}]*\}|\(\w+\.\)|\b1\.", " ", body)
        definition = _SENTENCE_END.split(_clean(body), 1)[0].split("; as,")[0]
        # Without the noun and its other forms (equalization: equalizing, equalized).
        yield docs[0], _clean(re.sub(rf"(?i)\b{re.escape(word[:6])}\w*", " ", definition))


def _wordnet_corpus(root: Path) -> dict:
    return {
        f"wn{offset}": {"title": ", ".join(words), "text": gloss}
        for offset, words, gloss in _wordnet_nouns(root)
    }


def wordnet_gcide(root: Path) -> tuple[dict, dict, dict]:
    queries, qrels = {}, {}
    for doc, definition in _gcide_definitions(root):
        content = [w for w in _WORDS.findall(definition) if len(w) >= 4]
        if f"q{doc}" not in queries and len(content) >= 3 and _words(definition) <= 30:
            queries[f"q{doc}"], qrels[f"q{doc}"] = definition, {doc: 1}
    return _wordnet_corpus(root), queries, qrels


def wordnet_keywords(root: Path) -> tuple[dict, dict, dict]:
    queries, qrels = {}, {}
    for doc, definition in _gcide_definitions(root):
        content = [w for w in _WORDS.findall(definition) if len(w) >= 4]
        if f"q{doc}" not in queries and len(content) >= 3:
            queries[f"q{doc}"], qrels[f"q{doc}"] = " ".join(content[:5]), {doc: 1}
    return _wordnet_corpus(root), queries, qrels


_ROFF_FONT = re.compile(r"\\f[BIRP]|\\f\(..|\\\*\(..|\\\(..|\\[&-]|\\ ")


def _man_paragraphs(page: Path) -> Iterator[tuple[str, str]]:
    """(section heading, paragraph) of a roff manual page."""
    heading, lines = "", []
    with gzip.open(page, "rt", errors="replace") as source:
        for raw in [*source, ".PP"]:
            line = _ROFF_FONT.sub("", raw.rstrip("\n"))
            if line.startswith((".SH", ".SS", ".PP", ".P ", ".TP", ".IP", ".LP", ".in")) or (
                line == ".P"
            ):
                if lines:
                    yield heading, _clean(" ".join(lines))
                lines = []
                if line.startswith(".SH"):
                    heading = line[3:].strip().strip('"').title()
            elif line.startswith((".B ", ".I ", ".BR ", ".IR ", ".RB ", ".RI ", ".BI ", ".IB ")):
                lines.append(line.split(" ", 1)[1].replace('"', ""))
            elif not line.startswith((".", "'")):
                lines.append(line)


def manpage_synonyms(root: Path) -> tuple[dict, dict, dict]:
    synonym = _synonyms(root)
    corpus, queries, qrels = {}, {}, {}
    for page in sorted((root / "usr/share/man").glob("man*/*.gz")):
        name = page.name.removesuffix(".gz")
        for number, (heading, paragraph) in enumerate(_man_paragraphs(page)):
            if heading in ("Name", "Synopsis", "See Also", "Colophon") or _words(paragraph) < 20:
                continue
            doc = f"{name}-{number}"
            corpus[doc] = {"title": f"{name} {heading}".strip(), "text": paragraph}
            first = _SENTENCE_END.split(paragraph, 1)[0]
            words = _WORDS.findall(first)
            replaced = [synonym.get(w.lower(), w) if len(w) > 3 else w for w in words]
            changed = sum(a.lower() != b for a, b in zip(words, replaced, strict=True))
            if 6 <= len(words) <= 40 and changed >= max(2, len(words) // 4):
                queries[f"q{doc}"], qrels[f"q{doc}"] = " ".join(replaced), {doc: 1}
    return corpus, queries, qrels


_POD_CODE = re.compile(r"[A-Z]<<+\s+(.*?)\s+>>+|[A-Z]<([^<>]*)>")
_POD_ESCAPES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/"}


def _pod_text(paragraph: str) -> str:
    """A POD paragraph without its formatting codes (link texts and index entries kept as
    their words, E<> escapes as their characters)."""

    def plain(match: re.Match) -> str:
        code, inner = match.group(0)[0], match.group(1) or match.group(2) or ""
        if code == "X" or code == "Z":
            return ""
        if code == "E":
            return _POD_ESCAPES.get(inner, "")
        if code == "L":
            return inner.split("|", 1)[0].replace('"', "").split("/", 1)[0]
        return inner

    previous = None
    while previous != paragraph:
        previous, paragraph = paragraph, _POD_CODE.sub(plain, paragraph)
    return _clean(paragraph)


def _pod_sections(page: Path) -> Iterator[tuple[str, str, list[str]]]:
    """(page title, heading, paragraphs) of each section of a POD page."""
    paragraphs = re.split(r"\n\s*\n", page.read_text(errors="replace"))
    title, heading, blocks, skipping = page.stem, "", [], False
    for paragraph in [*paragraphs, "=head1 END"]:
        command = re.match(r"=(\w+)\s*(.*)", paragraph, re.S)
        if command and command.group(1).startswith("head"):
            if heading == "NAME" and blocks:
                title = blocks[0]
            elif heading:
                yield title, heading, blocks
            heading, blocks = _pod_text(command.group(2)), []
        elif command and command.group(1) in ("begin", "end", "for"):
            skipping = command.group(1) == "begin"
        elif command and command.group(1) == "item":
            blocks.append(_pod_text(command.group(2)))
        elif not command and not skipping and paragraph.strip():
            blocks.append(_pod_text(paragraph))


def perl_questions(root: Path) -> tuple[dict, dict, dict]:
    pages = sorted((root / "usr/share/perl").glob("*/pod/*.pod"))
    return _headed_sections(
        [section for page in pages for section in _pod_sections(page)],
        "pl",
        lambda title, query: query.endswith("?") and 3 <= _words(query) <= 25,
    )


# The function words a question loses when typed as keywords.
_FUNCTION_WORDS = (
    "a an the i my me we you your it its is are was were be been do does did how what why "
    "where when which who whom whose can could should would will to of in on for with from by "
    "at or and as if that this these those there here not no yes so than then into about out "
    "up down get got have has had"
)
KEYWORDS_DROPPED = frozenset(_FUNCTION_WORDS.split())
_KEYWORD = re.compile(r"[\w'#:/.-]+")


def perl_keywords(root: Path) -> tuple[dict, dict, dict]:
    corpus, questions, qrels = perl_questions(root)
    queries = {}
    for qid, question in questions.items():
        words = [w.strip(".") for w in _KEYWORD.findall(question.lower())]
        queries[qid] = " ".join(w for w in words if w and w not in KEYWORDS_DROPPED)
    return corpus, queries, qrels


BUILDERS: dict[str, Callable[[Path], tuple[dict, dict, dict]]] = {
    "python-headings": python_headings,
    "postgres-lead": postgres_lead,
    "wordnet-gcide": wordnet_gcide,
    "manpage-synonyms": manpage_synonyms,
    "wordnet-keywords": wordnet_keywords,
    "perl-questions": perl_questions,
    "perl-keywords": perl_keywords,
}


def collection_build(
    name: str, into: Path, *, documents: int = CORPUS_SIZE, queries_kept: int = QUERIES
) -> Path:
    """The collection `name` in BEIR format under `into`/name (packages cached in `into`):
    `queries_kept` queries and at most `documents` documents."""
    root = packages_unpacked(PACKAGES[name], into)
    corpus, queries, qrels = BUILDERS[name](root)
    chosen = random.Random(SEED).sample(sorted(queries), min(queries_kept, len(queries)))
    judged = {doc for qid in chosen for doc in qrels[qid]}
    others = sorted(set(corpus) - judged)
    rest = random.Random(SEED).sample(others, max(0, min(len(others), documents - len(judged))))
    kept = {doc: corpus[doc] for doc in sorted(judged | set(rest))}
    return beir_write(
        into / name, {qid: queries[qid] for qid in sorted(chosen)}, qrels, corpus=kept
    )
