from django import forms


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class BatchForm(forms.Form):
    name = forms.CharField(
        max_length=120, required=False, help_text="Optional, e.g. “Dealers, wave 2”."
    )
    engine = forms.ChoiceField()
    tags = forms.CharField(
        max_length=400,
        required=False,
        help_text="Comma-separated, e.g. “north, promo”. Bundles can be filtered by tag.",
    )

    def __init__(self, *args, engines, **kwargs):
        super().__init__(*args, **kwargs)
        self.engines = engines
        self.fields["engine"].choices = [(e.name, e.label) for e in engines]
        self.fields["engine"].initial = engines[0].name if engines else None
