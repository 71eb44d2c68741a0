from django import forms

from .models import Exclusion


class ExclusionForm(forms.Form):
    connector_id = forms.TypedChoiceField(label="Port", coerce=int, empty_value=None)
    start = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    end = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    reason = forms.ChoiceField(choices=Exclusion.Reason.choices)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, ports: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connector_id"].choices = [("", "Every port")] + [
            (str(p), f"Port {p}") for p in ports
        ]
        self.fields["connector_id"].required = False
