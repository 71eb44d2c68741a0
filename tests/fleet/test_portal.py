"""The operators' campaign pages: their own campaigns only, each charger's timeline, and the
buttons for those who may write."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from fleet.campaigns import services
from fleet.models import Campaign, FirmwareRelease
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory
from tests.fleet.test_campaigns import SHA, api_for

pytestmark = pytest.mark.django_db


def campaign_of(prop, name: str) -> Campaign:
    ChargerFactory(property=prop, vendor="Acme", firmware_version="1.0")
    release = FirmwareRelease.objects.create(
        organization=prop.organization,
        version="2.0",
        vendor="Acme",
        location="https://fw.example/a.bin",
        sha256=SHA,
    )
    return services.campaign_create(
        organization=prop.organization, name=name, release=release, selection=services.Selection()
    )


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_operator_sees_and_halts_only_their_own_campaigns():
    mine, theirs = PropertyFactory(), PropertyFactory()
    own = campaign_of(mine, "Our rollout")
    other = campaign_of(theirs, "Their rollout")
    web = client_for(MembershipFactory(organization=mine.organization).user)
    listing = web.get("/fleet/campaigns/").content.decode()
    assert "Our rollout" in listing and "Their rollout" not in listing
    detail = web.get(f"/fleet/campaigns/{own.pk}/")
    assert detail.status_code == 200 and "Waiting for its stage" in detail.content.decode()
    assert web.get(f"/fleet/campaigns/{other.pk}/").status_code == 404
    assert web.post(f"/fleet/campaigns/{other.pk}/halt/").status_code == 404
    assert Campaign.objects.get(pk=other.pk).status == "draft"
    assert web.post(f"/fleet/campaigns/{own.pk}/start/").status_code == 302
    assert Campaign.objects.get(pk=own.pk).status == "running"


def test_a_viewer_sees_no_buttons_and_cannot_act():
    prop = PropertyFactory()
    campaign = campaign_of(prop, "Rollout")
    web = client_for(MembershipFactory(organization=prop.organization, role="viewer").user)
    page = web.get(f"/fleet/campaigns/{campaign.pk}/").content.decode()
    assert "Rollout" in page and ">Halt<" not in page
    assert web.post(f"/fleet/campaigns/{campaign.pk}/start/").status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_the_main_menu_leads_to_campaigns_and_baselines():
    """They were reachable only by typing their address (docs/firmware.md said so)."""
    prop = PropertyFactory()
    web = client_for(MembershipFactory(organization=prop.organization).user)
    home = web.get("/chargers/").content.decode()
    assert 'href="/fleet/campaigns/"' in home and 'href="/fleet/baselines/"' in home
    page = web.get("/fleet/baselines/").content.decode()
    assert 'class="active" aria-current="page">Configuration baselines</a>' in page


# -- releases and campaigns made in the portal (the API's rules) ----------------------------------


def _release_form(org_id: int, **over) -> dict:
    return {
        "organization": org_id,
        "vendor": "Acme",
        "model": "",
        "version": "3.0",
        "location": "https://fw.example/3.bin",
        "sha256": SHA.upper(),
        "signing_certificate": "",
        "signature": "",
        "notes": "",
        **over,
    }


def test_an_operator_adds_a_release_over_https_only_and_signed_whole():
    prop = PropertyFactory()
    web = client_for(MembershipFactory(organization=prop.organization).user)
    org = prop.organization_id
    plain = web.post("/fleet/releases/", _release_form(org, location="http://fw.example/3.bin"))
    assert plain.status_code == 400 and "over HTTPS" in plain.content.decode()
    half = web.post("/fleet/releases/", _release_form(org, signature="c2ln"))
    assert half.status_code == 400 and "both its signing certificate" in half.content.decode()
    assert not FirmwareRelease.objects.exists()
    assert web.post("/fleet/releases/", _release_form(org)).status_code == 302
    assert FirmwareRelease.objects.get().sha256 == SHA  # typed in capitals, kept as hex


def test_releases_of_another_organization_are_neither_made_nor_touched():
    mine, theirs = PropertyFactory(), PropertyFactory()
    other = campaign_of(theirs, "Theirs").release
    web = client_for(MembershipFactory(organization=mine.organization).user)
    foreign = web.post("/fleet/releases/", _release_form(theirs.organization_id))
    assert foreign.status_code == 400 and FirmwareRelease.objects.count() == 1
    assert "Acme" not in web.get("/fleet/releases/").content.decode()
    assert web.post(f"/fleet/releases/{other.pk}/mark-bad/", {"reason": "x"}).status_code == 404
    assert not FirmwareRelease.objects.get(pk=other.pk).bad
    viewer = client_for(MembershipFactory(organization=mine.organization, role="viewer").user)
    assert viewer.post("/fleet/releases/", _release_form(mine.organization_id)).status_code == 403
    assert "Add a release" not in viewer.get("/fleet/releases/").content.decode()


def test_marking_a_release_bad_holds_its_running_campaign():
    prop = PropertyFactory()
    campaign = campaign_of(prop, "Rollout")
    services.campaign_transition(campaign_id=campaign.pk, action="start")
    web = client_for(MembershipFactory(organization=prop.organization).user)
    done = web.post(f"/fleet/releases/{campaign.release_id}/mark-bad/", {"reason": "bricks"})
    assert done.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).status == "held"
    assert "bricks" in web.get("/fleet/releases/").content.decode()


def test_uploading_a_file_without_an_https_site_says_why_and_keeps_nothing(settings, tmp_path):
    settings.SITE_URL, settings.FIRMWARE_ROOT = "http://csms.example", str(tmp_path)
    prop = PropertyFactory()
    release = campaign_of(prop, "Rollout").release
    web = client_for(MembershipFactory(organization=prop.organization).user)
    upload = SimpleUploadedFile("fw.bin", b"firmware")
    page = web.post(f"/fleet/releases/{release.pk}/file/", {"file": upload}, follow=True)
    assert "set SITE_URL to this site" in page.content.decode()
    assert list(tmp_path.iterdir()) == [] and FirmwareRelease.objects.get().file_name == ""


def _campaign_form(release_id: int, **over) -> dict:
    return {
        "name": "Portal rollout",
        "release": release_id,
        "current_version": "",
        "station_ids": "",
        "canary_percent": 20,
        "wave_size": 5,
        "success_percent": 90,
        "max_failures": 2,
        "report_minutes": 30,
        **over,
    }


def test_an_operator_creates_a_draft_campaign_of_chosen_locations():
    prop = PropertyFactory()
    elsewhere = PropertyFactory(organization=prop.organization)
    release = campaign_of(prop, "First").release
    ChargerFactory(property=elsewhere, vendor="Acme", station_id="FAR-1")
    web = client_for(MembershipFactory(organization=prop.organization).user)
    made = web.post("/fleet/campaigns/new/", _campaign_form(release.pk, properties=[prop.pk]))
    campaign = Campaign.objects.get(name="Portal rollout")
    assert made.status_code == 302 and made["Location"] == f"/fleet/campaigns/{campaign.pk}/"
    assert campaign.status == "draft" and campaign.report_timeout_s == 1800
    assert (campaign.canary_share, campaign.success_threshold, campaign.wave_size) == (0.2, 0.9, 5)
    assert [t.charger.property_id for t in campaign.targets.all()] == [prop.pk]
    page = web.get(f"/fleet/campaigns/{campaign.pk}/").content.decode()
    assert "Canary 20 % of the chargers" in page and "silent for 30 min" in page
    assert ">Start<" in page and ">Resume<" not in page  # only what a draft can do


def test_a_campaign_form_refuses_what_is_not_the_releases_organization():
    mine, theirs = PropertyFactory(), PropertyFactory()
    release = campaign_of(mine, "First").release
    their_release = campaign_of(theirs, "Theirs").release
    ChargerFactory(property=theirs, vendor="Acme", station_id="THEIRS-1")
    web = client_for(MembershipFactory(organization=mine.organization).user)
    cases = [
        _campaign_form(their_release.pk),  # not a choice
        _campaign_form(release.pk, properties=[theirs.pk]),  # not a choice
        _campaign_form(release.pk, station_ids="THEIRS-1"),  # reads as unknown
    ]
    for form in cases:
        answer = web.post("/fleet/campaigns/new/", form)
        assert answer.status_code == 400, form
    assert "Unknown charger: THEIRS-1" in answer.content.decode()
    assert Campaign.objects.count() == 2
    viewer = client_for(MembershipFactory(organization=mine.organization, role="viewer").user)
    assert viewer.post("/fleet/campaigns/new/", _campaign_form(release.pk)).status_code == 403
    assert "New campaign" not in viewer.get("/fleet/campaigns/").content.decode()


def test_marking_bad_over_the_api_takes_a_reason_in_words():
    prop = PropertyFactory()
    release = campaign_of(prop, "Rollout").release
    api = api_for(MembershipFactory(organization=prop.organization).user)
    url = f"/api/v1/firmware/releases/{release.pk}/mark-bad/"
    assert api.post(url, {"reason": ["x"]}, format="json").status_code == 400
    assert not FirmwareRelease.objects.get(pk=release.pk).bad
    assert api.post(url, {"reason": " bricks "}, format="json").status_code == 200
    assert FirmwareRelease.objects.get(pk=release.pk).bad_reason == "bricks"


# -- maintenance windows (set by the host; they were in the admin only) ---------------------------


def test_a_host_sets_and_clears_a_locations_maintenance_window():
    from fleet.models import MaintenanceWindow

    prop = PropertyFactory()
    web = client_for(MembershipFactory(organization=prop.organization).user)
    url = f"/fleet/windows/{prop.pk}/"
    p = f"w{prop.pk}"
    half = web.post(url, {f"{p}-start": "02:00", f"{p}-end": ""}, follow=True).content.decode()
    assert "Give both the start and the end" in half and not MaintenanceWindow.objects.exists()
    web.post(url, {f"{p}-start": "23:00", f"{p}-end": "04:30"})
    window = MaintenanceWindow.objects.get(property=prop)
    assert (f"{window.start:%H:%M}", f"{window.end:%H:%M}") == ("23:00", "04:30")
    page = web.get("/fleet/windows/").content.decode()
    assert "23:00–04:30" in page and 'value="23:00"' in page
    web.post(url, {f"{p}-start": "23:00", f"{p}-end": "04:30", "clear": "1"})
    assert not MaintenanceWindow.objects.exists()
    assert "Any time" in web.get("/fleet/windows/").content.decode()


def test_another_organizations_window_is_neither_shown_nor_set():
    from fleet.models import MaintenanceWindow

    mine, theirs = PropertyFactory(name="Mine"), PropertyFactory(name="Theirs")
    web = client_for(MembershipFactory(organization=mine.organization).user)
    p = f"w{theirs.pk}"
    answer = web.post(f"/fleet/windows/{theirs.pk}/", {f"{p}-start": "01:00", f"{p}-end": "02:00"})
    assert answer.status_code == 404 and not MaintenanceWindow.objects.exists()
    assert "Theirs" not in web.get("/fleet/windows/").content.decode()
    viewer = client_for(MembershipFactory(organization=mine.organization, role="viewer").user)
    p = f"w{mine.pk}"
    refused = viewer.post(
        f"/fleet/windows/{mine.pk}/", {f"{p}-start": "01:00", f"{p}-end": "02:00"}
    )
    assert refused.status_code == 403 and not MaintenanceWindow.objects.exists()


# -- configuration baselines made and edited in the portal ---------------------------------------


def _baseline_form(org_id: int, settings: str, **over) -> dict:
    return {
        "organization": org_id,
        "name": "Acme AC",
        "vendor": "Acme",
        "model": "AC22",
        "protocol": "1.6",
        "apply_on_boot": "on",
        "reboot_when_required": "on",
        "settings": settings,
        **over,
    }


def test_a_host_makes_and_edits_a_baseline_one_value_per_line():
    from fleet.models import Baseline

    prop = PropertyFactory()
    org = prop.organization_id
    web = client_for(MembershipFactory(organization=prop.organization).user)
    bad = web.post("/fleet/baselines/new/", _baseline_form(org, "MeterValueSampleInterval 60"))
    assert bad.status_code == 400 and "Line 1: write it as name = value." in bad.content.decode()
    secret = web.post("/fleet/baselines/new/", _baseline_form(org, "AuthorizationKey = 00ff"))
    assert secret.status_code == 400 and "Security tab" in secret.content.decode()
    v2 = web.post(
        "/fleet/baselines/new/",
        _baseline_form(org, "HeartbeatInterval = 60", protocol="2.0.1"),
    )
    assert v2.status_code == 400 and "Component/Variable = value" in v2.content.decode()
    assert not Baseline.objects.exists()
    made = web.post(
        "/fleet/baselines/new/",
        _baseline_form(org, "# comment\nMeterValueSampleInterval = 60\n\nStopTxnSampledData = "),
    )
    baseline = Baseline.objects.get()
    assert made.status_code == 302 and baseline.version == 1
    assert {(s.variable, s.value) for s in baseline.settings.all()} == {
        ("MeterValueSampleInterval", "60"),
        ("StopTxnSampledData", ""),
    }
    form = web.get(f"/fleet/baselines/{baseline.pk}/edit/").content.decode()
    assert "MeterValueSampleInterval = 60" in form
    web.post(
        f"/fleet/baselines/{baseline.pk}/edit/",
        _baseline_form(org, "SampledDataCtrlr/TxUpdatedInterval = 30", protocol="2.0.1"),
    )
    baseline.refresh_from_db()
    assert baseline.version == 2 and baseline.protocol == "2.0.1"
    assert [(s.component, s.variable, s.value) for s in baseline.settings.all()] == [
        ("SampledDataCtrlr", "TxUpdatedInterval", "30")
    ]
    twice = web.post("/fleet/baselines/new/", _baseline_form(org, "", protocol="2.0.1"))
    assert twice.status_code == 400 and "already has a baseline" in twice.content.decode()
    assert Baseline.objects.count() == 1


def test_another_organizations_baseline_is_not_edited_and_viewers_cannot_make_one():
    from fleet.models import Baseline, BaselineSetting

    mine, theirs = PropertyFactory(), PropertyFactory()
    other = Baseline.objects.create(
        organization=theirs.organization, name="Theirs", vendor="Acme", protocol="1.6"
    )
    web = client_for(MembershipFactory(organization=mine.organization).user)
    edit = f"/fleet/baselines/{other.pk}/edit/"
    assert web.get(edit).status_code == 404
    assert web.post(edit, _baseline_form(mine.organization_id, "A = 1")).status_code == 404
    assert not other.settings.exists()
    # Made in our organization whatever organization the form names.
    stray = web.post("/fleet/baselines/new/", _baseline_form(theirs.organization_id, "A = 1"))
    assert stray.status_code == 400 and Baseline.objects.count() == 1
    viewer = client_for(MembershipFactory(organization=mine.organization, role="viewer").user)
    assert viewer.get("/fleet/baselines/new/").status_code == 403
    assert "New baseline" not in viewer.get("/fleet/baselines/").content.decode()
    # A value for one EVSE is the API's to edit: the form would lose it.
    own = Baseline.objects.create(
        organization=mine.organization, name="Mine", vendor="Acme", protocol="2.0.1"
    )
    BaselineSetting.objects.create(
        baseline=own, component="EVSE", evse_id=1, variable="Power", value="11000"
    )
    page = web.get(f"/fleet/baselines/{own.pk}/edit/", follow=True).content.decode()
    assert "change it through the API" in page
