from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404
from guardian.admin import GuardedModelAdmin

from documents.authority import (
    may_change_document,
    may_create_collection,
    may_manage_collection,
    may_read_collection,
)
from documents.models import Chunk, Collection, Document, DocumentVersion
from documents.parsing import content_type_name
from documents.services.index import chunk_search_vectors_refresh
from documents.services.queue import documents_reprocess
from documents.services.uploads import UploadOutcome, document_create


class AuthorityAdmin(GuardedModelAdmin):
    """The admin's pages ask documents.authority, object by object: staff see only what they
    may read, exactly as in search; change, delete and the object-permission pages need the
    right to manage (a collection) or change (a document) that very object. Model permissions
    open the pages, but reach no existing object by themselves.

    Subclasses say what the object-level right is (`_may_change`) and which objects may be
    changed in bulk (`_changeable`)."""

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    def _member(self, request) -> bool:
        """Whether the user may use these pages at all: model permissions on documents, or a
        collection they manage (a collection's owner needs no model permission)."""
        user = request.user
        return (
            user.is_active
            and user.is_staff
            and (user.has_module_perms("documents") or Collection.objects.managed_by(user).exists())
        )

    def has_module_permission(self, request):
        return self._member(request)

    def has_view_permission(self, request, obj=None):
        # get_queryset has already limited obj to what the user may read.
        return self._member(request)

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return self._member(request)
        return self._may_change(request.user, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if any(not self._may_change(request.user, obj) for obj in objs):
            perms_needed = {*perms_needed, f"{self.opts.verbose_name_plural} you do not manage"}
        return deleted, counts, perms_needed, protected

    def delete_queryset(self, request, queryset):
        # delete_selected has checked every object through get_deleted_objects; this keeps
        # a direct call to the same rule.
        super().delete_queryset(request, self._changeable(request, queryset))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        response = super().render_change_form(request, context, add, change, form_url, obj)
        if obj is not None and not self._may_change(request.user, obj):
            # guardian's template links its permission pages, which this user may not open.
            response.template_name = "admin/change_form.html"
        return response

    def _object_managed(self, request, object_pk):
        obj = self.get_queryset(request).filter(pk=object_pk).first()
        if obj is None:
            raise Http404(f"No such {self.opts.verbose_name}.")
        if not self._may_change(request.user, obj):
            raise PermissionDenied
        return obj

    # guardian's object-permission pages: granting on an object is changing it.
    def obj_perms_manage_view(self, request, object_pk):
        self._object_managed(request, object_pk)
        return super().obj_perms_manage_view(request, object_pk)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        self._object_managed(request, object_pk)
        return super().obj_perms_manage_user_view(request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        self._object_managed(request, object_pk)
        return super().obj_perms_manage_group_view(request, object_pk, group_id)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "owner" and not request.user.is_superuser:
            # Not every user's name: the user themself, and the object's current owner.
            owner = getattr(self._edited(request), "owner_id", None)
            kwargs["queryset"] = get_user_model().objects.filter(
                pk__in=[request.user.pk, *([owner] if owner else [])]
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        request._authority_edited = obj
        return super().get_form(request, obj, change=change, **kwargs)

    @staticmethod
    def _edited(request):
        return getattr(request, "_authority_edited", None)

    def _may_change(self, user, obj) -> bool:
        raise NotImplementedError

    def _changeable(self, request, queryset):
        raise NotImplementedError


@admin.register(Collection)
class CollectionAdmin(AuthorityAdmin):
    list_display = ["name", "owner", "open_to_staff", "chunking", "created_at"]
    list_filter = ["open_to_staff"]
    search_fields = ["name", "description"]
    readonly_fields = [
        "calibrated_share",
        "readers_per_document",
        "read_principals",
        "manage_principals",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request):
        return request.user.is_staff and may_create_collection(request.user)

    @admin.display(description="calibrated vector share")
    def calibrated_share(self, obj) -> str:
        calibration = obj.calibration
        if obj.calibrated_dense_weight is None or not calibration:
            return "not measured yet (measured once it has documents of several passages)"
        return (
            f"{obj.calibrated_dense_weight:.1f}, measured {calibration['at'][:16]} on "
            f"{calibration['pseudo_queries']} pseudo-queries from its "
            f"{calibration['passages']} passages (manage.py calibrate); MRR@10 there "
            f"{calibration['mrr'][f'{obj.calibrated_dense_weight:.1f}']}, against "
            f"{calibration.get('default_mrr', 'not measured')} for each query's own share (the "
            "default). A measurement without labels, not applied by itself: set the vector "
            "share above to use it."
        )

    @admin.display(description="calibrated vector share")
    def calibrated_share_withheld(self, obj) -> str:
        return "shown to those who may read every document of the collection"

    def get_readonly_fields(self, request, obj=None):
        # The calibration is measured over every passage of the collection: its share, counts
        # and scores are figures of documents a viewer who reads only some of them may not
        # read (counts follow visibility, docs/permissions.md).
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not may_read_collection(request.user, obj):
            fields[fields.index("calibrated_share")] = "calibrated_share_withheld"
        return fields

    def _may_change(self, user, obj) -> bool:
        return may_manage_collection(user, obj)

    def _changeable(self, request, queryset):
        return queryset.managed_by(request.user)

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
        "embedding_runtime",
        "embedding_quantize",
        "origin",
        "created_by",
        "created_at",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


class ContentTypeFilter(admin.SimpleListFilter):
    """By type, named as people say it ("Word document"), offering only the types of the
    documents the viewer may list."""

    title = "type"
    parameter_name = "content_type"

    def lookups(self, request, model_admin):
        types = (
            model_admin.get_queryset(request)
            .order_by()
            .values_list("content_type", flat=True)
            .distinct()
        )
        return sorted(((t, content_type_name(t)) for t in types), key=lambda item: item[1])

    def queryset(self, request, queryset):
        return queryset.filter(content_type=self.value()) if self.value() else queryset


@admin.register(Document)
class DocumentAdmin(AuthorityAdmin):
    list_display = [
        "title",
        "collection",
        "status_with_progress",
        "kind",
        "size",
        "owner",
        "updated_at",
    ]
    # The collections of the documents listed, not every collection's name.
    list_filter = [
        "status",
        ("collection", admin.RelatedOnlyFieldListFilter),
        ContentTypeFilter,
        "language",
        "open_to_staff",
    ]
    search_fields = ["title", "source", "external_id", "sha256", "error"]
    list_select_related = ["collection", "owner"]
    readonly_fields = [
        "source",
        "origin",
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

    @admin.display(description="synced from")
    def origin(self, obj: Document) -> str:
        """The source items this document is (sources' SourceItem, by its reverse relation):
        where, what marked its last change (an ETag, a blob id, size and modification
        time), the commit it was fetched at, and when."""
        items = obj.source_items.select_related("source") if obj.pk else []
        lines = [
            f"{item.source.address(item.key)} (marker {item.marker}"
            + (f", commit {item.revision[:12]}" if item.revision else "")
            + f", synced {item.synced_at:%Y-%m-%d %H:%M} UTC)"
            for item in items
        ]
        return "\n".join(lines) or "uploaded, not synced from a source"

    @admin.display(description="type", ordering="content_type")
    def kind(self, obj: Document) -> str:
        return content_type_name(obj.content_type)

    @admin.display(description="status", ordering="status")
    def status_with_progress(self, obj: Document) -> str:
        if obj.status in (Document.Status.READY, Document.Status.PENDING):
            return obj.get_status_display()
        if obj.status == Document.Status.FAILED:
            return f"failed: {obj.error[:120]}"
        return f"{obj.get_status_display()} ({obj.progress}%)"

    @admin.action(
        description="Process the selected documents again (retry failed ones)",
        permissions=["change"],
    )
    def reprocess(self, request, queryset):
        changeable = self._changeable(request, queryset)
        count = documents_reprocess(documents=changeable)
        self.message_user(request, f"{count} document(s) queued for processing.")
        if skipped := queryset.count() - changeable.count():
            self.message_user(
                request,
                f"{skipped} document(s) left alone: you may read them but not change them.",
                messages.WARNING,
            )

    def has_add_permission(self, request):
        user = request.user
        return user.is_staff and Collection.objects.managed_by(user).exists()

    def _may_change(self, user, obj) -> bool:
        return may_change_document(user, obj)

    def _changeable(self, request, queryset):
        return queryset.changeable_by(request.user)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = DocumentAddForm
            kwargs["fields"] = [*DocumentAddForm.Meta.fields, "upload"]
        return super().get_form(request, obj, change=change, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "collection":
            # Uploads and moves go only into collections the user manages (a document's
            # owner may keep it where it is).
            edited = self._edited(request)
            kwargs["queryset"] = Collection.objects.managed_by(
                request.user
            ) | Collection.objects.filter(pk=getattr(edited, "collection_id", None))
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
            if "title" in form.changed_data and obj.indexed_version_id:
                # The title is in every passage's full-text vector, as for the API's rename.
                chunk_search_vectors_refresh(version_ids=[obj.indexed_version_id])
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
