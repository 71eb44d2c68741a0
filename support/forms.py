"""The contact form guests and hosts fill in."""

from datetime import timedelta

from django import forms
from django.utils import timezone

from .models import Ticket


class ContactForm(forms.Form):
    topic = forms.ChoiceField(choices=Ticket.Topic.choices, label="What is it about?")
    station_id = forms.CharField(
        max_length=60,
        required=False,
        label="Station ID",
        help_text="As printed below the QR code on the charger.",
    )
    property_name = forms.CharField(max_length=200, required=False, label="Property name")
    occurred_at = forms.DateTimeField(
        required=False,
        label="Date and time of your last attempt",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
    )
    message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=5000,
        label="What happened?",
    )
    name = forms.CharField(max_length=200, required=False, label="Your name")
    email = forms.EmailField(label="Your email", help_text="We reply here.")
    phone = forms.CharField(max_length=40, required=False, label="Phone (optional)")
    prompt = forms.CharField(max_length=120, required=False, widget=forms.HiddenInput)
    # Left empty by people; bots fill every field.
    website = forms.CharField(
        required=False, widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"})
    )

    def clean_station_id(self) -> str:
        return self.cleaned_data["station_id"].strip()

    def clean_occurred_at(self):
        value = self.cleaned_data["occurred_at"]
        if value and value > timezone.now() + timedelta(hours=24):
            raise forms.ValidationError("That time is in the future.")
        return value
