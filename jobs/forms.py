from django import forms
from django.utils.translation import gettext_lazy as _

from jobs.engines import engine_description, engine_label
from jobs.models import Batch


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


class VoiceSelect(forms.Select):
    """A voice per option, with what the page's script needs to know about it: whether it
    has a rate and a pitch setting, and its language."""

    def __init__(self, *args, voices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.voices = {v.id: v for v in voices}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        voice = self.voices.get(value)
        if voice is not None:
            option["attrs"].update(
                {
                    "data-rate": "1" if voice.supports_rate else "0",
                    "data-pitch": "1" if voice.supports_pitch else "0",
                }
            )
        return option


class ScriptOptionsForm(forms.Form):
    """How the batch's scripts are spoken (the texts themselves are the page's ``scripts``
    text areas, any number of them). Ranges and the voice's settings are the service's to
    check, so a refusal reads the same on the page, in the API and in a sheet."""

    voice = forms.ChoiceField(label=_("Voice"), required=False)
    rate = forms.FloatField(
        label=_("Speaking rate"),
        initial=1.0,
        required=False,
        help_text=_("1 is the voice's normal speed; 0.5 is half as fast, 2 twice as fast."),
        widget=forms.NumberInput(attrs={"step": "0.05"}),
    )
    pitch = forms.FloatField(
        label=_("Pitch"),
        initial=1.0,
        required=False,
        help_text=_("1 is the voice's normal pitch."),
        widget=forms.NumberInput(attrs={"step": "0.05"}),
    )

    def __init__(self, *args, voices, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["voice"]
        field.choices = [(v.id, f"{v.name} · {v.language}") for v in voices]
        field.widget = VoiceSelect(voices=voices, choices=field.choices)
        field.initial = voices[0].id if voices else None

    def clean_rate(self):
        return 1.0 if self.cleaned_data["rate"] is None else self.cleaned_data["rate"]

    def clean_pitch(self):
        return 1.0 if self.cleaned_data["pitch"] is None else self.cleaned_data["pitch"]


class OutputOptionsForm(forms.Form):
    """The batch's output options; the service checks the watermark's content."""

    resolution = forms.ChoiceField(
        required=False,
        label=_("Resolution"),
        choices=Batch.Resolution.choices,
        initial=Batch.Resolution.SOURCE,
        help_text=_("The video keeps the avatar's aspect ratio."),
    )
    quality = forms.ChoiceField(
        label=_("Quality"),
        required=False,
        choices=Batch.Quality.choices,
        initial=Batch.Quality.STANDARD,
    )
    watermark = forms.FileField(
        label=_("Watermark (PNG, optional)"),
        required=False,
        help_text=_("A logo with a transparent background, at most 2 MB."),
        widget=forms.FileInput(attrs={"accept": "image/png"}),
    )
    watermark_corner = forms.ChoiceField(
        required=False,
        label=_("Watermark corner"),
        choices=Batch.Corner.choices,
        initial=Batch.Corner.BOTTOM_RIGHT,
    )
    watermark_opacity = forms.FloatField(
        required=False,
        label=_("Watermark opacity"),
        initial=0.8,
        help_text=_("From 0 (invisible) to 1 (solid)."),
        widget=forms.NumberInput(attrs={"step": "0.05", "min": "0", "max": "1"}),
    )
    burn_subtitles = forms.BooleanField(
        label=_("Burn the subtitles into the videos"),
        required=False,
        help_text=_(
            "Scripts have subtitles of their own; an audio track needs an SRT file of the "
            "same name."
        ),
    )

    def clean(self):
        # A form posted without these fields (an older page, a script) gets the defaults.
        data = super().clean()
        for name, default in (
            ("resolution", Batch.Resolution.SOURCE),
            ("quality", Batch.Quality.STANDARD),
            ("watermark_corner", Batch.Corner.BOTTOM_RIGHT),
            ("watermark_opacity", 0.8),
        ):
            if data.get(name) in (None, ""):
                data[name] = default
        return data


class SheetOutputOptionsForm(OutputOptionsForm):
    """A sheet's batch options: each row says whether its subtitles are burned in."""

    burn_subtitles = None


class SheetUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Sheet (.xlsx or .csv)"),
        widget=forms.FileInput(
            attrs={
                "accept": ".xlsx,.csv,text/csv,application/vnd.openxmlformats-officedocument"
                ".spreadsheetml.sheet"
            }
        ),
    )
