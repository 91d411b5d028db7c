from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import F
from guardian.admin import GuardedModelAdmin

from documents.models import Chunk, Collection, Document, DocumentVersion
from documents.services import UploadOutcome, document_create, documents_reprocess


class VisibleOnlyAdmin(GuardedModelAdmin):
    """Staff see in the admin only what they may read, exactly as in search."""

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)


@admin.register(Collection)
class CollectionAdmin(VisibleOnlyAdmin):
    list_display = ["name", "owner", "open_to_staff", "chunking", "created_at"]
    list_filter = ["open_to_staff"]
    search_fields = ["name", "description"]
    readonly_fields = ["read_principals", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        if not change and not obj.owner_id:
            obj.owner = request.user
        super().save_model(request, obj, form, change)

    def get_changeform_initial_data(self, request):
        return {"owner": request.user.pk}


class DocumentAddForm(forms.ModelForm):
    upload = forms.FileField(help_text="The original file; its bytes are kept as version 1.")

    class Meta:
        model = Document
        fields = ["collection", "title", "metadata", "open_to_staff"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["title"].required = False
        self.fields["title"].help_text = "Defaults to the file name."


class VersionInline(admin.TabularInline):
    model = DocumentVersion
    fields = [
        "number",
        "file",
        "sha256",
        "size",
        "content_type",
        "page_count",
        "chunking",
        "embedding_model",
        "created_by",
        "created_at",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Document)
class DocumentAdmin(VisibleOnlyAdmin):
    list_display = [
        "title",
        "collection",
        "status_with_progress",
        "content_type",
        "size",
        "owner",
        "updated_at",
    ]
    list_filter = ["status", "collection", "content_type", "language", "open_to_staff"]
    search_fields = ["title", "source", "external_id", "sha256", "error"]
    list_select_related = ["collection", "owner"]
    readonly_fields = [
        "source",
        "external_id",
        "content_type",
        "sha256",
        "size",
        "language",
        "status",
        "progress",
        "error",
        "attempts",
        "stage_seconds",
        "status_changed_at",
        "current_version",
        "indexed_version",
        "properties",
        "read_principals",
        "created_at",
        "updated_at",
    ]
    inlines = [VersionInline]
    actions = ["reprocess"]

    @admin.display(description="status", ordering="status")
    def status_with_progress(self, obj: Document) -> str:
        if obj.status in (Document.Status.READY, Document.Status.PENDING):
            return obj.get_status_display()
        if obj.status == Document.Status.FAILED:
            return f"failed: {obj.error[:120]}"
        return f"{obj.get_status_display()} ({obj.progress}%)"

    @admin.action(description="Process the selected documents again (retry failed ones)")
    def reprocess(self, request, queryset):
        count = documents_reprocess(documents=queryset)
        self.message_user(request, f"{count} document(s) queued for processing.")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = DocumentAddForm
            kwargs["fields"] = [*DocumentAddForm.Meta.fields, "upload"]
        return super().get_form(request, obj, change=change, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "collection":
            kwargs["queryset"] = Collection.objects.visible_to(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": [*DocumentAddForm.Meta.fields, "upload"]})]
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        document, outcome = document_create(
            collection=form.cleaned_data["collection"],
            owner=request.user,
            upload=form.cleaned_data["upload"],
            title=form.cleaned_data["title"],
            metadata=form.cleaned_data["metadata"],
            open_to_staff=form.cleaned_data["open_to_staff"],
        )
        if outcome == UploadOutcome.UNCHANGED:
            messages.info(request, f"The same file is already in this collection as “{document}”.")
        elif outcome == UploadOutcome.NEW_VERSION:
            messages.info(
                request,
                f"“{document.source}” was already in this collection: the upload is its "
                f"version {document.current_version.number}.",
            )
        obj.pk = document.pk
        obj.refresh_from_db()


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["document", "version", "ordinal", "token_count", "page_start"]
    list_select_related = ["document", "version"]
    search_fields = ["text"]
    fields = [
        "document",
        "version",
        "ordinal",
        "text",
        "token_count",
        "heading_path",
        "page_start",
        "page_end",
        "char_start",
        "char_end",
        "embedding_model",
        "metadata",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        readable = Document.objects.visible_to(request.user)
        return (
            super()
            .get_queryset(request)
            .filter(document__in=readable)
            .annotate(embedding_model=F("vector__embedding_model"))
        )

    @admin.display(description="embedding model")
    def embedding_model(self, obj: Chunk) -> str:
        return obj.embedding_model or "-"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
