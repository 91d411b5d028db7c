from __future__ import annotations

from django import forms

from chat.prompts import TASKS
from chat.services import MAX_QUESTION_CHARS
from documents.models import Collection
from documents.selectors import collections_readable_with_counts


class CollectionChoices(forms.ModelMultipleChoiceField):
    """Checkboxes, each collection named with how many of its documents the user may read."""

    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj: Collection) -> str:
        count = obj.readable_documents
        return f"{obj.name} ({count} document{'' if count == 1 else 's'})"


class AskForm(forms.Form):
    question = forms.CharField(
        max_length=MAX_QUESTION_CHARS, widget=forms.Textarea(attrs={"rows": 3})
    )
    scope = CollectionChoices(
        queryset=Collection.objects.none(),
        required=False,
        label="Collections",
        help_text="None ticked: every collection you can read.",
    )
    task = forms.ChoiceField(
        choices=[(task, task.capitalize()) for task in TASKS], initial="answer", required=False
    )
    conversation = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scope"].queryset = collections_readable_with_counts(user)


class FeedbackForm(forms.Form):
    helpful = forms.TypedChoiceField(
        choices=[("1", "Helpful"), ("0", "Not helpful")], coerce=lambda value: value == "1"
    )
    comment = forms.CharField(
        max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
