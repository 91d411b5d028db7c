"""The permission mark (accounts 0005) also moves when a document or collection changes its
readers or is deleted, or a document moves to another collection."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_replica_marks"),
        ("documents", "0009_fusion_share_help"),
    ]

    operations = [
        migrations.RunSQL(
            """
            CREATE TRIGGER document_readers_changed AFTER UPDATE ON documents_document
                FOR EACH ROW
                WHEN (OLD.read_principals IS DISTINCT FROM NEW.read_principals
                      OR OLD.collection_id IS DISTINCT FROM NEW.collection_id)
                EXECUTE FUNCTION accounts_permissions_changed();
            CREATE TRIGGER document_deleted AFTER DELETE OR TRUNCATE ON documents_document
                FOR EACH STATEMENT EXECUTE FUNCTION accounts_permissions_changed();
            CREATE TRIGGER collection_readers_changed AFTER UPDATE ON documents_collection
                FOR EACH ROW
                WHEN (OLD.read_principals IS DISTINCT FROM NEW.read_principals
                      OR OLD.manage_principals IS DISTINCT FROM NEW.manage_principals)
                EXECUTE FUNCTION accounts_permissions_changed();
            CREATE TRIGGER collection_deleted AFTER DELETE OR TRUNCATE ON documents_collection
                FOR EACH STATEMENT EXECUTE FUNCTION accounts_permissions_changed();
            """,
            """
            DROP TRIGGER document_readers_changed ON documents_document;
            DROP TRIGGER document_deleted ON documents_document;
            DROP TRIGGER collection_readers_changed ON documents_collection;
            DROP TRIGGER collection_deleted ON documents_collection;
            """,
        ),
    ]
