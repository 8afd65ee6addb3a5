from django import forms
from django.utils.translation import gettext_lazy as _

from jobs.engines import engine_description, engine_label


class ProjectForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    description = forms.CharField(
        label=_("Description"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class BatchForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=120,
        required=False,
        help_text=_("Optional, e.g. “Dealers, wave 2”."),
    )
    engine = forms.ChoiceField(label=_("Engine"))
    tags = forms.CharField(
        label=_("Tags"),
        max_length=400,
        required=False,
        help_text=_("Comma-separated, e.g. “north, promo”. Bundles can be filtered by tag."),
    )

    def __init__(self, *args, engines, **kwargs):
        super().__init__(*args, **kwargs)
        self.engines = engines
        self.fields["engine"].choices = [(e.name, engine_label(e)) for e in engines]
        self.fields["engine"].initial = engines[0].name if engines else None

    def engine_notes(self) -> list[tuple[str, str]]:
        """(label, what it does) of each engine offered, in the active language."""
        return [(engine_label(e), engine_description(e)) for e in self.engines]
