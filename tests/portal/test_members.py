"""Members: owners only; invite by email, change roles, remove; an organization keeps an owner."""

import pytest
from django.core import mail
from django.urls import reverse

from backoffice.models import Membership

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["manager", "viewer"])
def test_only_owners_manage_members(client, site, role):
    client.force_login(getattr(site, role))
    assert client.get(reverse("backoffice:members")).status_code == 403
    membership = Membership.objects.get(user=site.viewer)
    assert (
        client.post(
            reverse("backoffice:member-change", args=[membership.pk]), {"role": "owner"}
        ).status_code
        == 403
    )
    assert "Members</a>" not in client.get("/").content.decode()


def test_owner_invites_a_member_who_gets_a_link(client, site, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client.force_login(site.owner)
    response = client.post(
        reverse("backoffice:members"),
        {
            "organization": site.org.pk,
            f"org{site.org.pk}-email": "New@Example.com",
            f"org{site.org.pk}-role": "manager",
        },
    )
    assert response.status_code == 302
    assert (
        Membership.objects.get(organization=site.org, user__username="new@example.com").role
        == "manager"
    )
    assert len(mail.outbox) == 1 and "/accounts/reset/" in mail.outbox[0].body
    assert site.org.name in mail.outbox[0].subject


def test_inviting_an_existing_member_explains_and_keeps_the_input(client, site):
    client.force_login(site.owner)
    response = client.post(
        reverse("backoffice:members"),
        {
            "organization": site.org.pk,
            f"org{site.org.pk}-email": site.viewer.username,
            f"org{site.org.pk}-role": "owner",
        },
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "member already" in body and site.viewer.username in body


def test_change_role_and_remove(client, site):
    client.force_login(site.owner)
    membership = Membership.objects.get(user=site.viewer, organization=site.org)
    client.post(reverse("backoffice:member-change", args=[membership.pk]), {"role": "manager"})
    membership.refresh_from_db()
    assert membership.role == "manager"
    client.post(reverse("backoffice:member-change", args=[membership.pk]), {"remove": "1"})
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_the_last_owner_cannot_leave_or_be_demoted(client, site):
    client.force_login(site.owner)
    own = Membership.objects.get(user=site.owner, organization=site.org)
    client.post(reverse("backoffice:member-change", args=[own.pk]), {"role": "viewer"})
    client.post(reverse("backoffice:member-change", args=[own.pk]), {"remove": "1"})
    own.refresh_from_db()
    assert own.role == "owner"


def test_another_organizations_members_are_404(client, site, other):
    client.force_login(other.owner)
    membership = Membership.objects.get(user=site.viewer)
    assert (
        client.post(
            reverse("backoffice:member-change", args=[membership.pk]), {"role": "owner"}
        ).status_code
        == 404
    )
    response = client.post(reverse("backoffice:members"), {"organization": site.org.pk})
    assert response.status_code == 404
