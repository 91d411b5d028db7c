"""Each answer's source documents as an array (Message.documents), filled from its stored
sources: what withholding an answer whose source is no longer readable checks."""

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
from django.db import migrations, models


def documents_fill(apps, schema_editor):
    Message = apps.get_model("chat", "Message")
    answers = Message.objects.exclude(sources=[]).only("pk", "sources")
    for answer in answers.iterator(chunk_size=1000):
        answer.documents = sorted({source["document_id"] for source in answer.sources})
        answer.save(update_fields=["documents"])


class Migration(migrations.Migration):

    dependencies = [
        ('chat', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='message',
            name='documents',
            field=django.contrib.postgres.fields.ArrayField(base_field=models.BigIntegerField(), blank=True, default=list, help_text="Its sources' documents.", size=None),
        ),
        migrations.RunPython(documents_fill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name='message',
            index=django.contrib.postgres.indexes.GinIndex(fields=['documents'], name='message_documents'),
        ),
    ]
