"""Portal forms for the organization's members (owners only)."""

from __future__ import annotations

from django import forms

from .models import Membership


class InviteMemberForm(forms.Form):
    email = forms.EmailField(
        label="Email", help_text="They get an email with a link to choose their password."
    )
    role = forms.ChoiceField(
        choices=Membership.Role.choices,
        initial=Membership.Role.VIEWER,
        help_text="Owner: everything. Manager: everything but members and payouts. "
        "Viewer: read-only.",
    )

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.prefix = f"org{organization.pk}"

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if Membership.objects.filter(
            organization=self.organization, user__username__iexact=email
        ).exists():
            raise forms.ValidationError(
                "This person is a member already; change their role in the list."
            )
        return email


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)
