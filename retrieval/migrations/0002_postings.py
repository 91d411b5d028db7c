from django.db import migrations, models


class Migration(migrations.Migration):
    """Impact-ordered postings for full-text search, kept by statement-level triggers on the
    chunk table in the same transaction as the chunks (see retrieval.models)."""

    dependencies = [
        ("retrieval", "0001_lexical_statistics"),
    ]

    operations = [
        migrations.AddField(
            model_name="corpusstat",
            name="posting_avgdl",
            field=models.FloatField(null=True),
        ),
        migrations.AddField(
            model_name="corpusstat",
            name="posting_k1",
            field=models.FloatField(db_default=0.9),
        ),
        migrations.AddField(
            model_name="corpusstat",
            name="posting_b",
            field=models.FloatField(db_default=0.4),
        ),
        migrations.RunSQL(
            """
            -- The BM25 term-frequency part: one definition for the triggers, the rebuild and
            -- the deletes, which find a posting by recomputing its key.
            CREATE FUNCTION retrieval_impact(tf float8, length integer, avgdl float8,
                                             k1 float8, b float8) RETURNS real
            LANGUAGE sql IMMUTABLE PARALLEL SAFE
            RETURN (tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / greatest(avgdl, 1))))::real;

            -- Read backwards by the primary key: a lexeme's passages, highest impact first,
            -- with the document id in the index for the permission check.
            CREATE TABLE retrieval_posting (
                lexeme text NOT NULL,
                impact real NOT NULL,
                chunk_id bigint NOT NULL,
                document_id bigint NOT NULL,
                PRIMARY KEY (lexeme, impact, chunk_id) INCLUDE (document_id)
            );

            CREATE FUNCTION retrieval_postings_follow() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE
                params record;
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    SELECT posting_avgdl, posting_k1, posting_b INTO params
                    FROM retrieval_corpusstat WHERE id = 1;
                ELSE
                    -- The corpus row may not exist yet (the statistics trigger may run after
                    -- this one): the first passages set the reference length.
                    INSERT INTO retrieval_corpusstat AS s (id, passages, length, posting_avgdl)
                    SELECT 1, 0, 0, avg(search_length) FILTER (WHERE search_vector IS NOT NULL)
                    FROM new_rows
                    ON CONFLICT (id) DO UPDATE
                        SET posting_avgdl = coalesce(s.posting_avgdl, excluded.posting_avgdl)
                    RETURNING s.posting_avgdl, s.posting_k1, s.posting_b INTO params;
                END IF;
                IF TG_OP <> 'INSERT' THEN
                    DELETE FROM retrieval_posting p USING (
                        SELECT u.lexeme, o.id,
                               retrieval_impact(coalesce(array_length(u.positions, 1), 1),
                                                o.search_length, params.posting_avgdl,
                                                params.posting_k1, params.posting_b) AS impact
                        FROM old_rows o, unnest(o.search_vector) u) gone
                    WHERE p.lexeme = gone.lexeme AND p.impact = gone.impact
                      AND p.chunk_id = gone.id;
                END IF;
                IF TG_OP <> 'DELETE' THEN
                    INSERT INTO retrieval_posting (lexeme, impact, chunk_id, document_id)
                    SELECT u.lexeme,
                           retrieval_impact(coalesce(array_length(u.positions, 1), 1),
                                            n.search_length, params.posting_avgdl,
                                            params.posting_k1, params.posting_b),
                           n.id, n.document_id
                    FROM new_rows n, unnest(n.search_vector) u;
                END IF;
                RETURN NULL;
            END
            $$;

            CREATE FUNCTION retrieval_postings_clear() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                TRUNCATE retrieval_posting;
                RETURN NULL;
            END
            $$;

            CREATE TRIGGER chunk_postings_insert AFTER INSERT ON documents_chunk
                REFERENCING NEW TABLE AS new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION retrieval_postings_follow();
            CREATE TRIGGER chunk_postings_update AFTER UPDATE ON documents_chunk
                REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION retrieval_postings_follow();
            CREATE TRIGGER chunk_postings_delete AFTER DELETE ON documents_chunk
                REFERENCING OLD TABLE AS old_rows
                FOR EACH STATEMENT EXECUTE FUNCTION retrieval_postings_follow();
            CREATE TRIGGER chunk_postings_truncate AFTER TRUNCATE ON documents_chunk
                FOR EACH STATEMENT EXECUTE FUNCTION retrieval_postings_clear();

            UPDATE retrieval_corpusstat
                SET posting_avgdl = length::float8 / greatest(passages, 1) WHERE passages > 0;
            INSERT INTO retrieval_posting (lexeme, impact, chunk_id, document_id)
                SELECT u.lexeme,
                       retrieval_impact(coalesce(array_length(u.positions, 1), 1),
                                        c.search_length, s.posting_avgdl, s.posting_k1,
                                        s.posting_b),
                       c.id, c.document_id
                FROM documents_chunk c CROSS JOIN retrieval_corpusstat s,
                     unnest(c.search_vector) u;
            """,
            """
            DROP TRIGGER chunk_postings_insert ON documents_chunk;
            DROP TRIGGER chunk_postings_update ON documents_chunk;
            DROP TRIGGER chunk_postings_delete ON documents_chunk;
            DROP TRIGGER chunk_postings_truncate ON documents_chunk;
            DROP FUNCTION retrieval_postings_follow();
            DROP FUNCTION retrieval_postings_clear();
            DROP TABLE retrieval_posting;
            DROP FUNCTION retrieval_impact(float8, integer, float8, float8, float8);
            """,
        ),
    ]
