from importlib import import_module

from django.db import migrations, models

# The corpus-wide statistics this migration replaces, restored by its reversal.
GLOBAL = import_module("retrieval.migrations.0001_lexical_statistics")

# The statistics trigger, for both tables it follows: the chunk table (passages written,
# changed, deleted: statement triggers) and the document table (a document moved to another
# collection takes its passages' statistics along: a row trigger, for moves alone). Each
# change is rows of (collection, full-text vector, length, sign), added to the collection's
# lexeme and passage counts and to the corpus totals.
FOLLOW = """
CREATE OR REPLACE FUNCTION retrieval_stats_follow() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text;
BEGIN
    IF TG_TABLE_NAME = 'documents_document' THEN
        -- A document moved to another collection (a row trigger, only for a move).
        changed := format(
            'SELECT %s::bigint AS collection_id, search_vector, search_length, -1 AS sign
             FROM documents_chunk WHERE document_id = %s
             UNION ALL
             SELECT %s::bigint, search_vector, search_length, 1
             FROM documents_chunk WHERE document_id = %s',
            OLD.collection_id, OLD.id, NEW.collection_id, NEW.id);
    ELSE
        changed := CASE TG_OP
            WHEN 'INSERT' THEN 'SELECT d.collection_id, r.search_vector, r.search_length,
                                       1 AS sign
                                FROM new_rows r JOIN documents_document d ON d.id = r.document_id'
            WHEN 'DELETE' THEN 'SELECT d.collection_id, r.search_vector, r.search_length,
                                       -1 AS sign
                                FROM old_rows r JOIN documents_document d ON d.id = r.document_id'
            ELSE 'SELECT d.collection_id, r.search_vector, r.search_length, 1 AS sign
                  FROM new_rows r JOIN documents_document d ON d.id = r.document_id
                  UNION ALL
                  SELECT d.collection_id, r.search_vector, r.search_length, -1
                  FROM old_rows r JOIN documents_document d ON d.id = r.document_id'
        END;
    END IF;
    -- Rows in sorted order: concurrent transactions lock the rows they share in the same
    -- order, so they queue instead of deadlocking.
    EXECUTE format($sql$
        WITH changed AS (%s),
        lexemes AS (
            INSERT INTO retrieval_lexemestat AS s (lexeme, collection_id, passages)
            SELECT u.lexeme, c.collection_id, sum(c.sign)
            FROM changed c, unnest(c.search_vector) u
            GROUP BY u.lexeme, c.collection_id HAVING sum(c.sign) <> 0
            ORDER BY u.lexeme, c.collection_id
            ON CONFLICT (lexeme, collection_id)
                DO UPDATE SET passages = s.passages + excluded.passages
        ),
        collections AS (
            INSERT INTO retrieval_collectionstat AS s (collection_id, passages, length)
            SELECT collection_id,
                   coalesce(sum(sign) FILTER (WHERE search_vector IS NOT NULL), 0),
                   coalesce(sum(sign * search_length), 0)
            FROM changed GROUP BY collection_id ORDER BY collection_id
            ON CONFLICT (collection_id) DO UPDATE SET passages = s.passages + excluded.passages,
                                                      length = s.length + excluded.length
        )
        INSERT INTO retrieval_corpusstat AS s (id, passages, length)
        SELECT 1, coalesce(sum(sign) FILTER (WHERE search_vector IS NOT NULL), 0),
               coalesce(sum(sign * search_length), 0)
        FROM changed
        ON CONFLICT (id) DO UPDATE SET passages = s.passages + excluded.passages,
                                       length = s.length + excluded.length
    $sql$, changed);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION retrieval_stats_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM retrieval_lexemestat;
    DELETE FROM retrieval_collectionstat;
    DELETE FROM retrieval_corpusstat;
    RETURN NULL;
END
$$;

CREATE TRIGGER document_stats_move AFTER UPDATE OF collection_id ON documents_document
    FOR EACH ROW WHEN (OLD.collection_id IS DISTINCT FROM NEW.collection_id)
    EXECUTE FUNCTION retrieval_stats_follow();

INSERT INTO retrieval_lexemestat (lexeme, collection_id, passages)
    SELECT u.lexeme, d.collection_id, count(*)
    FROM documents_chunk c JOIN documents_document d ON d.id = c.document_id,
         unnest(c.search_vector) u
    GROUP BY u.lexeme, d.collection_id;
INSERT INTO retrieval_collectionstat (collection_id, passages, length)
    SELECT d.collection_id, count(*) FILTER (WHERE c.search_vector IS NOT NULL),
           coalesce(sum(c.search_length), 0)
    FROM documents_chunk c JOIN documents_document d ON d.id = c.document_id
    GROUP BY d.collection_id;
"""

UNFOLLOW_MOVES = "DROP TRIGGER document_stats_move ON documents_document;"


class Migration(migrations.Migration):
    """Full-text statistics per collection (retrieval.models): lexeme counts and passage
    totals kept for each collection by the same triggers, so that a search within some
    collections scores with theirs alone."""

    dependencies = [
        ("retrieval", "0003_evaluation_sets"),
        ("documents", "0013_version_origin"),
    ]

    operations = [
        # Reversed last, once the corpus-wide table is back: its counts.
        migrations.RunSQL(migrations.RunSQL.noop, GLOBAL.LEXEMES_SQL),
        migrations.DeleteModel(name="LexemeStat"),
        migrations.CreateModel(
            name="LexemeStat",
            fields=[
                ("pk", models.CompositePrimaryKey("lexeme", "collection_id", blank=True,
                                                  editable=False, primary_key=True,
                                                  serialize=False)),  # fmt: skip
                ("lexeme", models.TextField()),
                ("collection_id", models.BigIntegerField()),
                ("passages", models.BigIntegerField()),
            ],
        ),
        migrations.CreateModel(
            name="CollectionStat",
            fields=[
                ("collection_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("passages", models.BigIntegerField(default=0)),
                ("length", models.BigIntegerField(default=0)),
            ],
        ),
        # The chunk table's triggers stay; their functions change.
        migrations.RunSQL(FOLLOW, UNFOLLOW_MOVES + GLOBAL.FUNCTIONS_SQL),
    ]
