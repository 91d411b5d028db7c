"""The retrieval statement: one SQL query ranks passages by vector similarity, by BM25 over the
full-text index, or by both fused, with the reader's permissions and the filters inside every
branch. This is the one place where prodrag writes SQL by hand.

Shape of the statement (its CTEs):

- `readable`: the ids of the collections the reader may read (GIN on read_principals), once.
  This and the document predicate are documents.authority's SQL fragments: the same rule as
  `Document.objects.visible_to`.
- `visible`: up to EXACT_BELOW + 1 documents the reader may read that pass the filters (the
  documents' read_principals GIN, UNION their collection_id btree, each with the filters).
- `gate`: whether `visible` is small, per branch (at most VECTOR_EXACT_BELOW documents for the
  vector branch, EXACT_BELOW for full text; both 2,000 by default, which bench.search found
  best: an iterative HNSW walk that must collect 100 candidates at 1% visibility took 4 times
  as long as the exact ranking). Every branch exists twice, gated by a one-time filter on
  it, and only one copy runs:
  - small (`*_exact`): the visible documents' passages, each ranked exactly: the vector
    branch reads their vectors from documents_chunkembedding, full text their full-text
    vectors from documents_chunk, each through its table's document_id index
    (`document_id = ANY(ARRAY(SELECT id FROM visible))`: one index scan, not a join the
    planner could trade for a hash join over the whole table). A subquery fenced by OFFSET 0
    scores them before they are ordered, so that neither an HNSW walk nor a GIN scan can
    stand in for the reading. Exact, so a user who can see k matching passages gets k; and
    cheap, because there are few.
  - large (`*_index`): an HNSW scan (cosine, the configured model's partial index over
    `embedding::vector(N)` in documents_chunkembedding), joined to the documents row by row
    for the permission and filter checks; for full text, the postings (below).
    pgvector's iterative scan (set by the caller: `hnsw.iterative_scan = relaxed_order`)
    keeps walking the graph until enough passages pass, up to `hnsw.max_scan_tuples`; since
    the gate sends a search here only when more than VECTOR_EXACT_BELOW documents are
    visible, such a walk ends quickly. The full-text copy's gate sits above its ranked
    subquery (fenced by its LIMIT): inside it, the planner would put the gate under the
    parallel Gather, which starts its workers even when the gate is closed (5 ms at 1M
    passages).
- `terms`: the query's lexemes (the same text-search configuration as the index) that one of
  the reader's passages (those the filters leave) has, with their IDF from
  retrieval_lexemestat; `tsq` ORs them into a tsquery. A lexeme only unreadable passages hold
  is dropped here, before anything is scored: whether a word occurs in documents the reader
  may not read, and how rarely, changes no passage, order, score or coverage they get (with
  few visible documents, the lexeme's postings are joined to `visible`; with many, they are
  read until one passes the permission and filter check). Full-text matching is OR,
  scoring is BM25 (k1, b; document length = words in the passage's vector): a passage that
  has most of the query's rare words ranks high even when it lacks one common word, which a
  conjunctive websearch_to_tsquery would drop entirely. Every query word makes a passage a
  candidate, so which of the reader's passages match depends on their passages alone (IDF
  and the average length come from the collections the search is filtered to, else from
  the whole corpus, readable or not: the side channel docs/usage.md describes; `corpus`
  holds their totals). Phrases and exclusions written in web-search syntax (`"..."`, `-word`, `or`)
  are still honoured as a filter on this branch.
- full text ranks in one of three ways, each exact (BM25's top k, ties aside):
  - few visible documents (`exact_rare`, `exact_check`, `fulltext_exact`): their passages
    that have a *rare* query word (in at most RARE_SHARE of all passages) are scored first;
    when the k-th of those scores more than any passage of common words alone could (each
    common word's highest impact times its idf, summed: `tsq.common_bound`), that is the
    ranking; otherwise every visible match is scored. The rare/common split only saves work:
    it no longer decides which passages are candidates.
  - many visible documents (`pooled`, `pooled_top`, `pooled_best`, `fulltext_pooled`,
    `pooled_check`): every passage with a query word gets its score from the impact-ordered
    postings (retrieval_posting, kept by the chunk table's triggers; see retrieval.models):
    the idf-weighted impacts summed per passage, read from the postings' primary key alone
    (an index-only scan: no passage row, no tsvector). The best POOL_PER_DEPTH x depth of
    those are checked against the reader's permissions and the filters by their document's
    key, the best `depth` visible ones are scored exactly from their full-text vectors, and
    the ranking stands when its k-th score beats what any passage left unscored could reach
    (the next one's summed impacts, widened by the drift of the average passage length since
    the impacts were computed).
  - otherwise (the check failed, or the postings were computed with another k1 or b),
    `fulltext_index` scores every visible match through the GIN index.
- `dense` / `fulltext`: each branch's candidates with their rank; `fused`: their union (FULL
  JOIN on chunk id) scored by reciprocal-rank fusion or by a convex combination of min-max
  normalised scores; `top`: the best k, optionally one passage per document.
- adaptive fusion (the default) also takes, inside `fused`, the query's own vector share
  and full text's coverage of the query, from the two rankings. The share is each ranking's
  *peak* (how far its top PEAK_TOP stand out: the score's drop from rank 1 to rank PEAK_TOP
  over its drop to the last candidate) over the sum of both peaks: a ranking whose best
  passages stand out from the rest is trusted more, one whose scores fall off evenly less.
  Full text's part is scaled by its *coverage*: its best passage's BM25 over that of an
  average passage holding each of the query's lexemes once (at most 1), so that a full-text
  ranking whose best match holds little of the query (the words of a paraphrase, say) weighs
  little. A question (`is_question`) gives full text half the share its peaks would: the
  words a question shares with its answer are few and common, and answering questions is
  what the embedding model was trained on. Measured on SciFact, on query sets built from it
  that favour one branch, and on collections of other kinds (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from documents.authority import (
    READABLE_COLLECTIONS_SQL,
    document_granted_sql,
    document_in_readable_collection_sql,
    document_readable_sql,
)
from retrieval.types import DENSE, FULLTEXT, HYBRID, Filters, Fusion


@dataclass(frozen=True)
class Statement:
    """Everything the SQL depends on. `principals` None: the reader may read everything."""

    mode: str
    text: str
    vector: str | None
    principals: tuple[int, ...] | None
    filters: Filters
    fusion: Fusion
    k: int
    depth: int
    collapse: bool
    model: str
    dimensions: int
    fts_config: str
    exact_below: int
    vector_exact_below: int
    bm25_k1: float
    bm25_b: float
    postings: bool


_WEBSEARCH_SYNTAX = re.compile(r'"|(^|\s)-\w|\sor\s', re.IGNORECASE)


def statement_build(spec: Statement) -> tuple[str, dict]:
    """The SQL text and its parameters (all values are parameters; only the vector dimension,
    an integer from settings, is part of the text)."""
    params: dict = {
        "principals": list(spec.principals or ()),
        "limit_visible": max(spec.exact_below, spec.vector_exact_below) + 1,
        "exact_below": spec.exact_below,
        "vector_exact_below": spec.vector_exact_below,
        "depth": spec.depth,
        "k": spec.k,
    }
    document_filter = _filters_sql(spec.filters, params)
    if spec.principals is None:
        readable = "TRUE"
    else:
        readable = document_readable_sql("d", "SELECT ids FROM readable")
    visible_where = f"{readable} AND {document_filter}"
    if spec.principals is None:
        visible = f"SELECT d.id FROM documents_document d WHERE {document_filter}"
    else:
        # Two arms, each limited on its own so that each keeps its index (the ACL's GIN,
        # collection_id's btree): an OR of the two conditions, or a UNION the planner may
        # merge in primary-key order, scans the whole table.
        visible = f"""
            SELECT id FROM (
                SELECT d.id FROM documents_document d
                WHERE {document_granted_sql("d")} AND {document_filter}
                LIMIT %(limit_visible)s) granted
            UNION
            SELECT id FROM (
                SELECT d.id FROM documents_document d
                WHERE cardinality((SELECT ids FROM readable)) > 0
                  AND {document_in_readable_collection_sql("d", "SELECT ids FROM readable")}
                  AND {document_filter}
                LIMIT %(limit_visible)s) in_collections"""
    ctes = [
        f"readable AS MATERIALIZED ({READABLE_COLLECTIONS_SQL})",
        f"visible AS MATERIALIZED ({visible} LIMIT %(limit_visible)s)",
        "gate AS MATERIALIZED (SELECT count(*) <= %(exact_below)s AS exact, "
        "count(*) <= %(vector_exact_below)s AS vector_exact FROM visible)",
    ]
    if spec.mode in (FULLTEXT, HYBRID):
        ctes += _terms_ctes(spec, params, visible_where)
    if spec.mode in (DENSE, HYBRID):
        ctes += _dense_ctes(spec, params, visible_where)
    if spec.mode in (FULLTEXT, HYBRID):
        ctes += _fulltext_ctes(spec, params, visible_where)
    ctes.append(f"fused AS ({_fused_sql(spec, params)})")
    partition = "WHERE nth = 1" if spec.collapse else ""
    ctes.append(
        f"""top AS (
            SELECT * FROM (
                SELECT fused.*, row_number() OVER (
                    PARTITION BY document_id ORDER BY score DESC, id) AS nth
                FROM fused) ranked
            {partition}
            ORDER BY score DESC, id LIMIT %(k)s)"""
    )
    if spec.vector is None:
        similarity, vectors = "NULL::float8", ""
    else:
        # Every returned passage's own similarity, also for those only full text found: what
        # context assembly's relevance threshold reads.
        similarity = f"1 - ({_distance_sql(spec, params)})"
        vectors = (
            "LEFT JOIN documents_chunkembedding e "
            "ON e.chunk_id = top.id AND e.embedding_model = %(model)s"
        )
    sql = (
        "WITH "
        + ",\n".join(ctes)
        + f"""
        SELECT top.id, top.score, top.dense_rank, top.fulltext_rank, {similarity}, top.bm25,
               ch.document_id, d.title, d.source, d.content_type, d.collection_id,
               co.name, ch.version_id, v.number, ch.ordinal, ch.heading_path, ch.page_start,
               ch.page_end, ch.char_start, ch.char_end, ch.text, top.dense_share,
               top.fulltext_coverage
        FROM top
        JOIN documents_chunk ch ON ch.id = top.id
        JOIN documents_document d ON d.id = ch.document_id
        JOIN documents_collection co ON co.id = d.collection_id
        JOIN documents_documentversion v ON v.id = ch.version_id
        {vectors}
        ORDER BY top.score DESC, top.id"""
    )
    return sql, params


def _filters_sql(filters: Filters, params: dict) -> str:
    conditions = ["TRUE"]
    for name, column in (
        ("collections", "d.collection_id"),
        ("document_ids", "d.id"),
        ("content_types", "d.content_type"),
        ("languages", "d.language"),
    ):
        values = getattr(filters, name)
        if values:
            params[name] = list(values)
            conditions.append(f"{column} = ANY(%({name})s)")
    for name, condition in (
        ("created_after", "d.created_at >= %(created_after)s"),
        ("created_before", "d.created_at < %(created_before)s"),
        # The file's own dates, ISO 8601 strings in properties (compared as such).
        ("modified_after", "d.properties->>'modified' >= %(modified_after)s"),
        ("modified_before", "d.properties->>'modified' < %(modified_before)s"),
    ):
        value = getattr(filters, name)
        if value is not None:
            params[name] = value.isoformat() if name.startswith("modified") else value
            conditions.append(condition)
    for name in ("metadata", "properties"):
        value = getattr(filters, name)
        if value:
            params[name] = json.dumps(value)
            conditions.append(f"d.{name} @> %({name})s::jsonb")
    return " AND ".join(conditions)


def _distance_sql(spec: Statement, params: dict) -> str:
    params |= {"vector": spec.vector, "model": spec.model}
    return f"e.embedding::vector({spec.dimensions}) <=> %(vector)s::vector({spec.dimensions})"


def _terms_ctes(spec: Statement, params: dict, visible_where: str) -> list[str]:
    params |= {
        "text": spec.text,
        "config": spec.fts_config,
        "k1": spec.bm25_k1,
        "b": spec.bm25_b,
        "postings": spec.postings,
        "rare": RARE_SHARE,
        # The collections whose statistics score this search: those it is filtered to, or
        # (None) every collection, whose sums the corpus row holds.
        "stat_collections": list(spec.filters.collections) or None,
    }
    quoted = _quoted_sql("lexeme")
    params["probe_postings"] = PROBE_POSTINGS
    if visible_where == "TRUE AND TRUE":
        # Every passage is the reader's: each lexeme some passage has is theirs.
        readable_term = "TRUE"
    else:
        # Few visible documents: the lexeme's first PROBE_POSTINGS postings are matched against
        # `visible` (a word the reader's passages hold is usually among them), else the visible
        # passages themselves are read (few: the gate is open), never the lexeme's every
        # posting. Many: its postings are read until one passes the permission and filter
        # check (at a visibility v, about 1/v of them).
        readable_term = f"""CASE WHEN (SELECT exact FROM gate)
            THEN EXISTS (SELECT FROM (SELECT p.document_id FROM retrieval_posting p
                                      WHERE p.lexeme = s.lexeme LIMIT %(probe_postings)s) p
                         JOIN visible v ON v.id = p.document_id)
                 OR EXISTS (SELECT FROM documents_chunk ch
                            WHERE ch.document_id = ANY(ARRAY(SELECT id FROM visible))
                              AND ch.search_vector @@ ({_quoted_sql("s.lexeme")})::tsquery)
            ELSE EXISTS (SELECT FROM retrieval_posting p
                         JOIN documents_document d ON d.id = p.document_id
                         WHERE p.lexeme = s.lexeme AND {visible_where}) END"""
    return [
        """corpus AS MATERIALIZED (
            SELECT passages, length FROM retrieval_corpusstat
            WHERE %(stat_collections)s::bigint[] IS NULL
            UNION ALL
            SELECT coalesce(sum(passages), 0), coalesce(sum(length), 0)
            FROM retrieval_collectionstat
            WHERE collection_id = ANY(%(stat_collections)s::bigint[])
            HAVING %(stat_collections)s::bigint[] IS NOT NULL)""",
        f"""terms AS MATERIALIZED (
            SELECT s.lexeme,
                   ln(1 + (c.passages - s.passages + 0.5) / (s.passages + 0.5)) AS idf,
                   s.passages::float8 / greatest(c.passages, 1) AS share,
                   (SELECT max(p.impact) FROM retrieval_posting p WHERE p.lexeme = s.lexeme)
                   AS top_impact
            FROM (SELECT q.lexeme, sum(l.passages) AS passages
                  FROM unnest(tsvector_to_array(to_tsvector(%(config)s::regconfig, %(text)s)))
                       AS q(lexeme)
                  JOIN retrieval_lexemestat l ON l.lexeme = q.lexeme
                  WHERE %(stat_collections)s::bigint[] IS NULL
                     OR l.collection_id = ANY(%(stat_collections)s::bigint[])
                  GROUP BY q.lexeme) s
            CROSS JOIN corpus c
            WHERE s.passages > 0 AND {readable_term})""",
        f"""tsq AS MATERIALIZED (
            SELECT (SELECT string_agg({quoted}, ' | ') FROM terms)::tsquery AS any_term,
                   (SELECT string_agg({quoted}, ' | ') FROM terms WHERE share <= %(rare)s)::tsquery
                   AS rare_term,
                   ARRAY(SELECT lexeme FROM terms) AS lexemes,
                   x.avgdl, x.current, x.current AND %(postings)s AS pooled,
                   x.impact_high,
                   -- BM25 of a passage of average length holding each of the query's
                   -- lexemes once (those some passage has).
                   (SELECT sum(idf) FROM terms) AS full_match,
                   -- The most a passage can score from the query's common words: each
                   -- word's highest impact, or BM25's ceiling k1 + 1 when the postings'
                   -- impacts are not current.
                   (SELECT coalesce(sum(idf * CASE WHEN x.current
                                                   THEN top_impact * x.impact_high
                                                   ELSE %(k1)s + 1 END), 0)
                    FROM terms WHERE share > %(rare)s) AS common_bound
            FROM (
                SELECT n.length::float8 / greatest(n.passages, 1) AS avgdl,
                       -- The postings' impacts are this search's BM25 parts (k1, b) up to
                       -- the difference of its average length (that of the collections it
                       -- searches, or of all) from the one they were computed with: a true
                       -- impact is at most impact_high times the stored one (float4
                       -- rounding included).
                       coalesce(c.posting_avgdl IS NOT NULL AND c.posting_k1 = %(k1)s
                                AND c.posting_b = %(b)s, FALSE) AS current,
                       greatest(1, n.length::float8 / greatest(n.passages, 1) / c.posting_avgdl)
                           * 1.000001 AS impact_high
                FROM (SELECT 1) one LEFT JOIN retrieval_corpusstat c ON TRUE
                     LEFT JOIN corpus n ON TRUE) x)""",
    ]


def _quoted_sql(lexeme: str) -> str:
    """The lexeme (an SQL expression) quoted for a tsquery (tsquery syntax: '' for a quote, \\
    for a backslash), so that no lexeme can be read as an operator."""
    return r"'''' || replace(replace(" + lexeme + r", '\', '\\'), '''', '''''') || ''''"


# With few visible documents, a query word's first this-many postings are matched against them
# before their passages are read instead (_terms_ctes).
PROBE_POSTINGS = 2000

# The pooled stage looks for the reader's best passages among this many times `depth` of the
# best pooled ones (a reader who sees 1% of the passages finds about `depth` there).
POOL_PER_DEPTH = 100

# Words in at most this share of all passages are *rare*: the exact path first scores the
# passages that have one, and scores the rest only when a passage of common words alone could
# still make the top k. Speed only: the ranking is exact either way.
RARE_SHARE = 0.05


def _match_sql(spec: Statement) -> str:
    """Whether a passage has any of the query's words (and the phrases and exclusions written
    in web-search syntax)."""
    return f"ch.search_vector @@ (SELECT any_term FROM tsq) AND {_syntax_sql(spec)}"


def _syntax_sql(spec: Statement) -> str:
    if _WEBSEARCH_SYNTAX.search(spec.text):
        return "ch.search_vector @@ websearch_to_tsquery(%(config)s::regconfig, %(text)s)"
    return "TRUE"


_BM25 = """(
    SELECT sum(t.idf * x.tf * (%(k1)s + 1)
               / (x.tf + %(k1)s * (1 - %(b)s + %(b)s * ch.search_length
                                                 / (SELECT avgdl FROM tsq))))
    FROM (SELECT u.lexeme, coalesce(array_length(u.positions, 1), 1)::float8 AS tf
          FROM unnest(ts_filter(setweight(setweight(ch.search_vector, 'D'), 'A',
                                          (SELECT lexemes FROM tsq)), '{a}')) u) x
    JOIN terms t ON t.lexeme = x.lexeme)"""


def _dense_ctes(spec: Statement, params: dict, visible_where: str) -> list[str]:
    distance = _distance_sql(spec, params)
    return [
        # OFFSET 0 fences the scan: ordered by distance without it, the planner may walk the
        # HNSW index instead, filtering out all but the few visible passages.
        f"""dense_exact AS (
            SELECT id, document_id, distance FROM (
                SELECT e.chunk_id AS id, e.document_id, {distance} AS distance
                FROM documents_chunkembedding e
                WHERE e.document_id = ANY(ARRAY(SELECT id FROM visible))
                  AND e.embedding_model = %(model)s AND (SELECT vector_exact FROM gate)
                OFFSET 0) scored
            ORDER BY distance, id LIMIT %(depth)s)""",
        f"""dense_index AS (
            SELECT e.chunk_id AS id, e.document_id, {distance} AS distance
            FROM documents_chunkembedding e JOIN documents_document d ON d.id = e.document_id
            WHERE NOT (SELECT vector_exact FROM gate) AND e.embedding_model = %(model)s
              AND {visible_where}
            ORDER BY {distance} LIMIT %(depth)s)""",
        """dense AS (
            SELECT id, document_id, 1 - distance AS similarity,
                   row_number() OVER (ORDER BY distance, id) AS rank,
                   min(1 - distance) OVER () AS low, max(1 - distance) OVER () AS high
            FROM (SELECT * FROM dense_exact UNION ALL SELECT * FROM dense_index) branch)""",
    ]


def _fulltext_ctes(spec: Statement, params: dict, visible_where: str) -> list[str]:
    params |= {
        # How far down the pooled passages the reader's are looked for.
        "pool_limit": spec.depth * POOL_PER_DEPTH,
        # The rank whose score must beat every unread passage: the k asked for, or the whole
        # candidate list when results are collapsed to one passage per document.
        "check_offset": (spec.depth if spec.collapse else spec.k) - 1,
    }
    visible_chunks = "ch.document_id = ANY(ARRAY(SELECT id FROM visible))"
    exact_rare = _scored_sql(
        f"ch.search_vector @@ (SELECT rare_term FROM tsq) AND {_syntax_sql(spec)}",
        f"{visible_chunks} AND (SELECT exact FROM gate)",
    )
    exact_rest = _scored_sql(
        _match_sql(spec),
        f"{visible_chunks} AND (SELECT exact FROM gate) AND NOT (SELECT proven FROM exact_check)",
    )
    pooled_scored = _scored_sql(
        _syntax_sql(spec),
        "ch.id = ANY(ARRAY(SELECT chunk_id FROM pooled_best WHERE n <= %(depth)s))",
    )
    pooled_join = (
        ""
        if visible_where == "TRUE AND TRUE"
        else f"JOIN documents_document d ON d.id = a.document_id WHERE {visible_where}"
    )
    return [
        # The exact path in two stages: the visible passages that have a rare word, then, only
        # if a passage of common words alone could still make the top k, every match.
        f"""exact_rare AS MATERIALIZED ({exact_rare})""",
        """exact_check AS MATERIALIZED (
            SELECT coalesce((SELECT score FROM exact_rare
                             ORDER BY score DESC, id OFFSET %(check_offset)s LIMIT 1)
                            > (SELECT common_bound FROM tsq), FALSE) AS proven)""",
        f"""fulltext_exact AS (
            SELECT * FROM exact_rare WHERE (SELECT proven FROM exact_check)
            UNION ALL
            {exact_rest})""",
        # Over many documents, every passage with a query word is scored from the postings
        # (their impacts summed per passage: no passage row is read), the best the reader may
        # see are scored exactly, and the ranking is exact when no passage left unscored can
        # beat the k-th.
        """pooled AS (
            SELECT p.chunk_id, p.document_id, sum(t.idf * p.impact) AS partial
            FROM terms t JOIN retrieval_posting p ON p.lexeme = t.lexeme
            WHERE NOT (SELECT exact FROM gate) AND (SELECT pooled FROM tsq)
            GROUP BY p.chunk_id, p.document_id)""",
        """pooled_top AS MATERIALIZED (
            SELECT * FROM pooled ORDER BY partial DESC, chunk_id LIMIT %(pool_limit)s + 1)""",
        f"""pooled_best AS MATERIALIZED (
            SELECT chunk_id, partial, row_number() OVER (ORDER BY partial DESC, chunk_id) AS n
            FROM (
                SELECT a.chunk_id, a.partial
                FROM (SELECT * FROM pooled_top ORDER BY partial DESC, chunk_id
                      LIMIT %(pool_limit)s) a {pooled_join}
                ORDER BY a.partial DESC, a.chunk_id LIMIT %(depth)s + 1) best)""",
        f"""fulltext_pooled AS MATERIALIZED ({pooled_scored})""",
        # What a passage left unscored can reach: the next visible one's summed impacts, or,
        # when the reader's passages ran out among the best pooled, the next pooled one's.
        """pooled_check AS MATERIALIZED (
            SELECT (SELECT pooled FROM tsq) AND coalesce(
                       (SELECT score FROM fulltext_pooled
                        ORDER BY score DESC, id OFFSET %(check_offset)s LIMIT 1)
                       > (SELECT impact_high FROM tsq) * greatest(
                           (SELECT partial FROM pooled_best WHERE n = %(depth)s + 1),
                           (SELECT partial FROM pooled_top ORDER BY partial DESC, chunk_id
                            OFFSET %(pool_limit)s LIMIT 1)),
                       NOT EXISTS (SELECT FROM pooled_best WHERE n > %(depth)s)
                       AND NOT EXISTS (SELECT FROM pooled_top OFFSET %(pool_limit)s)) AS exact)""",
        # Should that fail too, every visible passage with a query word is scored.
        f"""fulltext_index AS (
            SELECT * FROM (
                SELECT id, document_id, score FROM (
                    SELECT ch.id, ch.document_id, {_BM25} AS score
                    FROM documents_chunk ch JOIN documents_document d ON d.id = ch.document_id
                    WHERE {_match_sql(spec)} AND {visible_where}
                    OFFSET 0) candidates
                ORDER BY score DESC, id LIMIT %(depth)s) ranked
            WHERE NOT (SELECT exact FROM gate) AND NOT (SELECT exact FROM pooled_check))""",
        """fulltext AS (
            SELECT id, document_id, score AS bm25,
                   row_number() OVER (ORDER BY score DESC, id) AS rank,
                   min(score) OVER () AS low, max(score) OVER () AS high
            FROM (SELECT * FROM fulltext_exact
                  UNION ALL SELECT * FROM fulltext_pooled WHERE (SELECT exact FROM pooled_check)
                  UNION ALL SELECT * FROM fulltext_index) branch)""",
    ]


def _scored_sql(match: str, where: str) -> str:
    """The best `depth` of the passages `where` selects, each scored by BM25 when it passes
    `match`. OFFSET 0 fences the scoring: each passage is scored once, before the ordering."""
    return f"""
        SELECT id, document_id, score FROM (
            SELECT ch.id, ch.document_id, CASE WHEN {match} THEN {_BM25} END AS score
            FROM documents_chunk ch
            WHERE {where}
            OFFSET 0) scored
        WHERE score IS NOT NULL ORDER BY score DESC, id LIMIT %(depth)s"""


def _fused_sql(spec: Statement, params: dict) -> str:
    if spec.mode == DENSE:
        return """SELECT id, document_id, rank AS dense_rank, NULL::bigint AS fulltext_rank,
                         similarity, NULL::float8 AS bm25, similarity AS score,
                         NULL::float8 AS dense_share, NULL::float8 AS fulltext_coverage
                  FROM dense"""
    if spec.mode == FULLTEXT:
        return """SELECT id, document_id, NULL::bigint AS dense_rank, rank AS fulltext_rank,
                         NULL::float8 AS similarity, bm25, bm25 AS score,
                         NULL::float8 AS dense_share, NULL::float8 AS fulltext_coverage
                  FROM fulltext"""
    params |= {"dense_share": spec.fusion.dense_share, "rrf_k": spec.fusion.rrf_k}
    adaptive = spec.fusion.method == "adaptive"
    dense_norm = """coalesce((j.similarity - j.dense_low) / nullif(j.dense_high - j.dense_low, 0),
                              CASE WHEN j.dense_id IS NULL THEN 0 ELSE 1 END)"""
    fulltext_norm = """coalesce(
                           (j.bm25 - j.fulltext_low) / nullif(j.fulltext_high - j.fulltext_low, 0),
                           CASE WHEN j.fulltext_id IS NULL THEN 0 ELSE 1 END)"""
    if spec.fusion.method == "rrf":
        score = """share.dense * coalesce(1.0 / (%(rrf_k)s + j.dense_rank), 0)
                   + (1 - share.dense) * coalesce(1.0 / (%(rrf_k)s + j.fulltext_rank), 0)"""
    elif adaptive:
        # Full text's part scaled by how much of the query its best passage covers.
        score = f"""share.dense * {dense_norm}
                    + (1 - share.dense) * j.coverage * {fulltext_norm}"""
    else:
        # Min-max normalised within each branch's candidates; a passage one branch did not
        # return gets 0 from it. With a single candidate, that candidate is the best: 1.
        score = f"share.dense * {dense_norm} + (1 - share.dense) * {fulltext_norm}"
    default = "j.query_share" if spec.fusion.per_query else "%(dense_share)s"
    if spec.fusion.by_collection:
        # The passage's collection's share where a manager set one, else the default.
        share = f"""CROSS JOIN LATERAL (
                       SELECT coalesce(c.fusion_dense_weight, {default}) AS dense
                       FROM documents_document d
                       JOIN documents_collection c ON c.id = d.collection_id
                       WHERE d.id = j.document_id) share"""
    else:
        share = f"CROSS JOIN LATERAL (SELECT {default}::float8 AS dense) share"
    # Each branch is read once, here (a second reader would make PostgreSQL materialise it);
    # the adaptive fusion's figures are window aggregates over the joined candidates.
    peaks = ""
    if adaptive:
        peaks = f""",
                   {_peaks_sql()}"""
        params["fulltext_factor"] = QUESTION_FULLTEXT_FACTOR if is_question(spec.text) else 1.0
    return f"""SELECT j.id, j.document_id, j.dense_rank, j.fulltext_rank, j.similarity, j.bm25,
                      {score} AS score, share.dense AS dense_share,
                      {"j.coverage" if adaptive else "NULL"}::float8 AS fulltext_coverage
               FROM (
                   SELECT coalesce(dn.id, ft.id) AS id,
                          coalesce(dn.document_id, ft.document_id) AS document_id,
                          dn.id AS dense_id, dn.rank AS dense_rank, dn.similarity,
                          dn.low AS dense_low, dn.high AS dense_high,
                          ft.id AS fulltext_id, ft.rank AS fulltext_rank, ft.bm25,
                          ft.low AS fulltext_low, ft.high AS fulltext_high{peaks}
                   FROM dense dn FULL JOIN fulltext ft ON ft.id = dn.id) j
               {share}"""


# How far a ranking's best passages stand out: the drop of its score from rank 1 to rank
# PEAK_TOP as a share of the drop to its last candidate. A ranking of one passage stands out
# entirely; one of equal scores, not at all.
PEAK_TOP = 10
# Full text's share of a question's adaptive fusion, as a part of what the peaks give it.
QUESTION_FULLTEXT_FACTOR = 0.5
# A question: it ends with a question mark or opens with an English interrogative word or
# auxiliary ("how to ...", "what is ...", "does ... ?") or a request ("give me all ...").
# Words that also open names or keyword searches are left out ("Will Smith", "May 2024",
# "find options", "list comprehension").
_QUESTION = re.compile(
    r"\?\s*$|^\W*(?:how|what|why|where|when|which|who|whom|whose|is|are|was|were|do|does|did"
    r"|can|could|should|would|(?:give|tell|show) me)\b",
    re.IGNORECASE,
)


def is_question(text: str) -> bool:
    return bool(_QUESTION.search(text))


def _peak_sql(branch: str, column: str) -> str:
    """The peak of one branch (alias `branch` in the join), the same on every joined row."""
    top, last = f"max({branch}.{column}) OVER ()", f"min({branch}.{column}) OVER ()"
    tenth = f"min({branch}.{column}) FILTER (WHERE {branch}.rank <= {PEAK_TOP}) OVER ()"
    return f"""CASE WHEN count({branch}.id) OVER () < 2 THEN 1.0
                    ELSE coalesce(({top} - {tenth}) / nullif({top} - {last}, 0), 0) END"""


def _peaks_sql() -> str:
    """The adaptive fusion's figures of this query: the vector share, each ranking's peak over
    the sum of both (even when neither stands out) with full text's part of it scaled by
    `fulltext_factor`, and full text's coverage of the query, its best passage's BM25 over
    `full_match` (at most 1)."""
    dense, fulltext = _peak_sql("dn", "similarity"), _peak_sql("ft", "bm25")
    peaks = f"coalesce(({dense}) / nullif(({dense}) + ({fulltext}), 0), 0.5)"
    return f"""1 - %(fulltext_factor)s * (1 - {peaks}) AS query_share,
               least(1, coalesce(max(ft.bm25) OVER () / nullif((SELECT full_match FROM tsq), 0),
                                 0)) AS coverage"""


def expansion_terms_build(*, chunk_ids: list[int], text: str, fts_config: str, n: int):
    """Pseudo-relevance feedback: the `n` lexemes that weigh most (term frequency times IDF)
    in these passages and are not already in the query. The passages come from a search
    that applied the reader's permissions, so nothing unreadable leaks into the terms."""
    sql = """
        SELECT u.lexeme
        FROM documents_chunk ch
        CROSS JOIN unnest(ch.search_vector) u
        CROSS JOIN LATERAL (SELECT sum(l.passages) AS passages FROM retrieval_lexemestat l
                            WHERE l.lexeme = u.lexeme) s
        CROSS JOIN retrieval_corpusstat c
        WHERE ch.id = ANY(%(ids)s)
          AND u.lexeme <> ALL(tsvector_to_array(to_tsvector(%(config)s::regconfig, %(text)s)))
          AND length(u.lexeme) > 2 AND u.lexeme !~ '^[0-9]'
        GROUP BY u.lexeme, s.passages, c.passages
        ORDER BY sum(coalesce(array_length(u.positions, 1), 1))
                 * ln(1 + (c.passages - s.passages + 0.5) / (s.passages + 0.5)) DESC, u.lexeme
        LIMIT %(n)s"""
    return sql, {"ids": chunk_ids, "config": fts_config, "text": text, "n": n}
