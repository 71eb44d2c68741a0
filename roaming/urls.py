"""OCPI endpoints (CPO), mounted at /ocpi/: every module in each version we speak
(`<ocpi_version:version>` is 2.2.1 or 2.3.0, roaming.ocpi.VERSIONS), the Payments module in
2.3.0 only. A view answers in the version of the URL it was called at."""

from django.urls import path, re_path, register_converter

from . import ocpi
from .transport import unknown_path
from .views import cpo, emsp, hub


class VersionConverter:
    regex = "|".join(version.replace(".", r"\.") for version in ocpi.VERSIONS)

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(VersionConverter, "ocpi_version")

app_name = "roaming"

urlpatterns = [
    path("versions", cpo.versions, name="versions"),
    path("<ocpi_version:version>", cpo.version_details, name="version-details"),
    path("<ocpi_version:version>/credentials", cpo.credentials, name="credentials"),
    path("<ocpi_version:version>/locations", cpo.locations, name="locations"),
    path(
        "<ocpi_version:version>/locations/<str:location_id>",
        cpo.location_detail,
        name="location",
    ),
    path(
        "<ocpi_version:version>/locations/<str:location_id>/<str:evse_uid>",
        cpo.location_detail,
        name="evse",
    ),
    path(
        "<ocpi_version:version>/locations/<str:location_id>/<str:evse_uid>/<str:connector_id>",
        cpo.location_detail,
        name="connector",
    ),
    path("<ocpi_version:version>/tariffs", cpo.tariffs, name="tariffs"),
    path("<ocpi_version:version>/tokens", cpo.tokens_root, name="tokens"),
    path("<ocpi_version:version>/commands/", cpo.command, name="commands"),
    path("<ocpi_version:version>/sessions", cpo.sessions_list, name="sessions"),
    path("<ocpi_version:version>/cdrs", cpo.cdrs_list, name="cdrs"),
    path("<ocpi_version:version>/commands/<str:command>", cpo.command, name="command"),
    path(
        "<ocpi_version:version>/tokens/<str:country_code>/<str:party_id>/<str:token_uid>",
        cpo.token,
        name="token",
    ),
    # Our eMSP role (roaming/views/emsp.py): the Tokens Sender interface partner CPOs call.
    path("<ocpi_version:version>/emsp/tokens", emsp.tokens, name="emsp-tokens"),
    path(
        "<ocpi_version:version>/emsp/tokens/<str:token_uid>/authorize",
        emsp.authorize,
        name="emsp-token-authorize",
    ),
    path("<ocpi_version:version>/emsp/locations", emsp.locations_root, name="emsp-locations"),
    path(
        "<ocpi_version:version>/emsp/locations/<str:country_code>/<str:party_id>/<str:location_id>",
        emsp.location,
        name="emsp-location",
    ),
    path(
        "<ocpi_version:version>/emsp/locations/<str:country_code>/<str:party_id>/<str:location_id>"
        "/<str:evse_uid>",
        emsp.location,
        name="emsp-evse",
    ),
    path(
        "<ocpi_version:version>/emsp/locations/<str:country_code>/<str:party_id>/<str:location_id>"
        "/<str:evse_uid>/<str:connector_id>",
        emsp.location,
        name="emsp-connector",
    ),
    path("<ocpi_version:version>/emsp/tariffs", emsp.tariffs_root, name="emsp-tariffs"),
    path(
        "<ocpi_version:version>/emsp/tariffs/<str:country_code>/<str:party_id>/<str:tariff_id>",
        emsp.tariff,
        name="emsp-tariff",
    ),
    path("<ocpi_version:version>/emsp/sessions", emsp.sessions_root, name="emsp-sessions"),
    path(
        "<ocpi_version:version>/emsp/sessions/<str:country_code>/<str:party_id>/<str:session_id>",
        emsp.session,
        name="emsp-session",
    ),
    path("<ocpi_version:version>/emsp/cdrs", emsp.cdrs, name="emsp-cdrs"),
    path("<ocpi_version:version>/emsp/cdrs/<str:cdr_id>", emsp.cdr, name="emsp-cdr"),
    # Hub Client Info (mod_hub_client_info Receiver): a hub's parties and their status.
    path("<ocpi_version:version>/hubclientinfo", hub.client_info_root, name="hubclientinfo"),
    path(
        "<ocpi_version:version>/hubclientinfo/<str:country_code>/<str:party_id>",
        hub.client_info,
        name="hubclientinfo-party",
    ),
    # The response_url of each command we send a CPO (mod_commands Sender interface).
    path(
        "<ocpi_version:version>/emsp/commands/<str:command>/<str:uid>",
        emsp.command_result,
        name="emsp-command-result",
    ),
    # mod_payments Receiver interface (2.3.0): the PTP pushes terminals and its financial advice
    # confirmations; {payments}/terminals and {payments}/financial-advice-confirmations below
    # the module's URL, as the module's examples write them.
    path("2.3.0/payments", cpo.payments_root, name="payments"),
    # The module's examples POST to ".../terminals/": with or without the slash.
    re_path(r"^2\.3\.0/payments/terminals/?$", cpo.terminals, name="terminals"),
    path("2.3.0/payments/terminals/<str:terminal_id>", cpo.terminal, name="terminal"),
    re_path(
        r"^2\.3\.0/payments/financial-advice-confirmations/?$",
        cpo.financial_advice_confirmations,
        name="financial-advice-confirmations",
    ),
    path(
        "2.3.0/payments/financial-advice-confirmations/<str:fac_id>",
        cpo.financial_advice_confirmation,
        name="financial-advice-confirmation",
    ),
    # Anything else under /ocpi/: 404 in the OCPI envelope, not an HTML page.
    re_path(r"^.*$", unknown_path, name="unknown"),
]
