"""Members: owners only; invite by email, change roles, remove; an organization keeps an owner."""

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from backoffice.models import Membership
from tests.concurrency import all_at_once

from .conftest import make_site

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


def test_the_api_does_not_demote_the_last_owner(client, site):
    client.force_login(site.owner)
    response = client.post(
        f"/api/v1/organizations/{site.org.pk}/members/",
        {"email": site.owner.username, "role": "viewer"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "needs an owner" in response.content.decode()
    assert Membership.objects.get(user=site.owner, organization=site.org).role == "owner"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgresql_only")
@pytest.mark.parametrize("change", [{"remove": "1"}, {"role": "viewer"}])
def test_two_owners_who_remove_or_demote_each_other_at_once_leave_one_owner(change):
    site = make_site("A")
    second = Membership.objects.get(user=site.manager, organization=site.org)
    second.role = "owner"
    second.save()
    first = Membership.objects.get(user=site.owner, organization=site.org)

    def change_other(user, other: Membership):
        def call() -> None:
            browser = Client()
            browser.force_login(user)
            url = reverse("backoffice:member-change", args=[other.pk])
            # 403/404: the other owner's change came first and took this one's owner role.
            assert browser.post(url, change).status_code in (302, 403, 404)

        return call

    all_at_once(change_other(site.owner, second), change_other(site.manager, first))
    assert Membership.objects.filter(organization=site.org, role="owner").count() == 1
