"""Guest forms: the Station ID entry and the start (port, email). The card is never a field
here: it is collected by the processor's element in the browser (templates/guest/pay.html)."""

from django import forms


class StationIdForm(forms.Form):
    station_id = forms.CharField(max_length=100, label="Station ID", strip=True)


class StartForm(forms.Form):
    connector = forms.TypedChoiceField(coerce=int, label="Port", widget=forms.RadioSelect)
    email = forms.EmailField(label="Email for your receipt")
    agree = forms.BooleanField(label="I agree to the price shown above", required=True)
    # The price the page showed (payments.price_version_key): a start at another is refused.
    price_version = forms.CharField(max_length=32, required=False, widget=forms.HiddenInput)

    def __init__(self, *args, ports: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connector"].choices = [
            (p["id"], f"Port {p['id']}") for p in ports if p["startable"]
        ]
        if len(self.fields["connector"].choices) == 1:
            self.fields["connector"].initial = self.fields["connector"].choices[0][0]
