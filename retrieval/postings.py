"""Full text's impact-ordered postings (retrieval_posting, see retrieval.models): the SQL that
recomputes them all, for a change of BM25's k1 or b or a large drift of the average passage
length. The chunk table's triggers keep them current otherwise."""

REBUILD_SQL = [
    # Writers of passages wait (their triggers would write postings with the old parameters);
    # searches go on, reading the old postings and parameters until the commit.
    "LOCK TABLE documents_chunk IN SHARE MODE",
    """INSERT INTO retrieval_corpusstat AS s (id, passages, length, posting_avgdl, posting_k1,
                                             posting_b)
       SELECT 1, 0, 0, NULL, %(k1)s, %(b)s
       ON CONFLICT (id) DO UPDATE
           SET posting_avgdl = CASE WHEN s.passages > 0
                                    THEN s.length::float8 / s.passages END,
               posting_k1 = excluded.posting_k1, posting_b = excluded.posting_b""",
    "DELETE FROM retrieval_posting",
    """INSERT INTO retrieval_posting (lexeme, impact, chunk_id, document_id)
       SELECT u.lexeme,
              retrieval_impact(coalesce(array_length(u.positions, 1), 1), c.search_length,
                               s.posting_avgdl, s.posting_k1, s.posting_b),
              c.id, c.document_id
       FROM documents_chunk c CROSS JOIN retrieval_corpusstat s, unnest(c.search_vector) u""",
]
