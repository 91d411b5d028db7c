"""What ran the embedding model, and how quantised, recorded on each version. Versions indexed
before were embedded unquantised: by PyTorch with the local provider (ONNX Runtime ran single
texts, to the same vectors), by the endpoint with the `openai` one."""

from django.conf import settings
from django.db import migrations, models


def versions_record(apps, schema_editor):
    runtime = "endpoint" if settings.EMBEDDING_PROVIDER == "openai" else "torch"
    DocumentVersion = apps.get_model("documents", "DocumentVersion")
    DocumentVersion.objects.exclude(embedding_model="").update(
        embedding_runtime=runtime, embedding_quantize="none"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0010_permission_marks"),
    ]

    operations = [
        migrations.AddField(
            model_name="documentversion",
            name="embedding_quantize",
            field=models.CharField(
                blank=True, help_text="How its weights were quantised: int8 or none.", max_length=20
            ),
        ),
        migrations.AddField(
            model_name="documentversion",
            name="embedding_runtime",
            field=models.CharField(
                blank=True, help_text="What ran the model: onnx, torch or endpoint.", max_length=20
            ),
        ),
        migrations.RunPython(versions_record, migrations.RunPython.noop),
    ]
