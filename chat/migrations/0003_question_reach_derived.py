"""Each question's reach (Message.reach): the collections it could draw on when it was asked,
which decide who may see it on the Quality page and in the feedback admin; and the documents
its standalone query was rewritten from (Message.derived_from), with which it is withheld.
Which answers an earlier query was rewritten from was not recorded: a query that differs from
its question is taken to carry every earlier answer of its conversation. What an earlier
question could reach is not known: one asked in chosen collections reached those; one asked
in all is taken to have reached every collection there is, so only a viewer who may read in
all of them sees it."""

import django.contrib.postgres.fields
from django.db import migrations, models


def questions_fill(apps, schema_editor):
    Collection = apps.get_model("documents", "Collection")
    Message = apps.get_model("chat", "Message")
    questions = Message.objects.filter(role="user")
    questions.exclude(scope=[]).update(reach=models.F("scope"))
    questions.filter(scope=[]).update(reach=sorted(Collection.objects.values_list("pk", flat=True)))
    rewritten = questions.exclude(query=models.F("text")).exclude(query="")
    for question in rewritten.iterator(chunk_size=1000):
        earlier = Message.objects.filter(
            conversation_id=question.conversation_id,
            role="assistant",
            created_at__lt=question.created_at,
        ).values_list("documents", flat=True)
        question.derived_from = sorted({pk for documents in earlier for pk in documents})
        question.save(update_fields=["derived_from"])


class Migration(migrations.Migration):

    dependencies = [
        ("chat", "0002_answer_documents"),
        ("documents", "0011_embedding_runtime"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="reach",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.BigIntegerField(),
                blank=True,
                help_text="Collection ids the question could draw on when it was asked.",
                null=True,
                size=None,
            ),
        ),
        migrations.AddField(
            model_name="message",
            name="derived_from",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.BigIntegerField(),
                blank=True,
                default=list,
                help_text="Documents of the earlier answers its query was rewritten from.",
                size=None,
            ),
        ),
        migrations.RunPython(questions_fill, migrations.RunPython.noop),
    ]
