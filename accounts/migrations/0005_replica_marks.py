"""Marks that tell a read replica's freshness (accounts.replicas): the permission mark, kept
by triggers on every table whose change can narrow what a user may read (here the users and
their groups; documents 0010 adds documents and collections), and users' write marks."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_audit_trail'),
    ]

    operations = [
        # Once per transaction: a replica shows all of a transaction's changes at once. The
        # new position is above the last committed one even when this transaction waited for
        # that one's row lock, so a replica that has replayed a later change but not this one
        # always holds an older mark than the primary.
        migrations.RunSQL(
            """
            CREATE FUNCTION accounts_permissions_changed() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF current_setting('prodrag.permissions_marked', true) IS DISTINCT FROM 'on' THEN
                    INSERT INTO accounts_permissionmark (id, position)
                    VALUES (1, pg_current_wal_insert_lsn() - '0/0'::pg_lsn)
                    ON CONFLICT (id) DO UPDATE SET position = GREATEST(
                        accounts_permissionmark.position + 1, EXCLUDED.position);
                    PERFORM set_config('prodrag.permissions_marked', 'on', true);
                END IF;
                RETURN NULL;
            END $$;
            """,
            "DROP FUNCTION accounts_permissions_changed();",
        ),
        migrations.CreateModel(
            name='PermissionMark',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.BigIntegerField(help_text="The primary's WAL insert position (bytes) when the last change was written.")),
            ],
        ),
        migrations.CreateModel(
            name='WriteMark',
            fields=[
                ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to=settings.AUTH_USER_MODEL)),
                ('position', models.BigIntegerField()),
            ],
        ),
        migrations.RunSQL(
            """
            CREATE TRIGGER user_permissions_changed AFTER UPDATE ON accounts_user FOR EACH ROW
                WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active
                      OR OLD.is_superuser IS DISTINCT FROM NEW.is_superuser)
                EXECUTE FUNCTION accounts_permissions_changed();
            CREATE TRIGGER user_deleted AFTER DELETE OR TRUNCATE ON accounts_user
                FOR EACH STATEMENT EXECUTE FUNCTION accounts_permissions_changed();
            CREATE TRIGGER user_groups_changed
                AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON accounts_user_groups
                FOR EACH STATEMENT EXECUTE FUNCTION accounts_permissions_changed();
            """,
            """
            DROP TRIGGER user_permissions_changed ON accounts_user;
            DROP TRIGGER user_deleted ON accounts_user;
            DROP TRIGGER user_groups_changed ON accounts_user_groups;
            """,
        ),
    ]
