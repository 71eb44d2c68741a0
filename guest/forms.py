"""Guest forms: the Station ID entry and the start (port, email, card)."""

from django import forms


class StationIdForm(forms.Form):
    station_id = forms.CharField(max_length=100, label="Station ID", strip=True)


class StartForm(forms.Form):
    connector = forms.TypedChoiceField(coerce=int, label="Port", widget=forms.RadioSelect)
    email = forms.EmailField(label="Email for your receipt")
    card_number = forms.CharField(max_length=30, label="Card number")
    agree = forms.BooleanField(label="I agree to the price shown above", required=True)

    def __init__(self, *args, ports: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connector"].choices = [(p["id"], f"Port {p['id']}") for p in ports if p["startable"]]
        if len(self.fields["connector"].choices) == 1:
            self.fields["connector"].initial = self.fields["connector"].choices[0][0]

    def clean_card_number(self) -> str:
        digits = "".join(ch for ch in self.cleaned_data["card_number"] if ch.isdigit())
        if not 12 <= len(digits) <= 19 or not _luhn_ok(digits):
            raise forms.ValidationError("Check the card number: it should be 12–19 digits, as printed on the card.")
        return digits


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0
