"""What an organization trusts for Plug & Charge: its root certificates (the roots its chargers
are given with InstallCertificate and that chains are checked against), the sub-CA certificates
known to chain to them, and its PKI provider settings (docs/pki.md)."""

from __future__ import annotations

from django.db import models


class CertificateUse(models.TextChoices):
    # OCPP 2.0.1 InstallCertificateUseEnumType: the roots a charger may be given.
    V2G = "V2GRootCertificate", "V2G root (ISO 15118: the charger's V2G certificate chains to it)"
    MO = "MORootCertificate", "Mobility operator root (contract certificates chain to it)"
    CSMS = "CSMSRootCertificate", "Central system root (the charger checks our TLS server with it)"
    MANUFACTURER = "ManufacturerRootCertificate", "Manufacturer root (signed firmware)"


class KeptCertificate(models.Model):
    """What is kept of a certificate an organization trusts (a root or a sub-CA), its PEM whole."""

    certificate_pem = models.TextField()
    fingerprint_sha256 = models.CharField(max_length=64)
    subject = models.CharField(max_length=255)
    not_after = models.DateTimeField()
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["use", "subject", "id"]


class RootCertificate(KeptCertificate):
    """A root certificate an organization installed: contract chains are checked against its MO
    roots, V2G certificates against its V2G roots; OCSP responders are called only for CAs that
    chain to one of them."""

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="root_certificates"
    )
    use = models.CharField(max_length=40, choices=CertificateUse.choices)

    class Meta(KeptCertificate.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "fingerprint_sha256"], name="pki_root_once_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_use_display()}: {self.subject}"


class SubCaCertificate(KeptCertificate):
    """A sub-CA certificate of an organization's V2G or MO hierarchy (from a provider's chain or
    added by staff), kept so an OCSP request naming it as issuer can be matched. It is used only
    while it still chains to one of the organization's installed roots."""

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="sub_ca_certificates"
    )
    use = models.CharField(
        max_length=40,
        choices=[(CertificateUse.V2G.value, "V2G"), (CertificateUse.MO.value, "Mobility operator")],
    )

    class Meta(KeptCertificate.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "fingerprint_sha256"], name="pki_sub_ca_once_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} (sub-CA)"


class PkiSettings(models.Model):
    """An organization's PKI provider for ISO 15118 (docs/pki.md)."""

    class V2gSigner(models.TextChoices):
        NONE = "", "None: V2G certificate requests are rejected"
        LOCAL = "local", "Our local V2G CA (test benches and private fleets)"
        PROVIDER = "provider", "The external PKI provider"

    organization = models.OneToOneField(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="pki_settings"
    )
    provider_url = models.URLField(
        blank=True,
        help_text="HTTPS base URL of the external PKI provider (contract certificates for cars; "
        "V2G certificates if chosen below). Called through the outbound guard.",
    )
    provider_token = models.TextField(
        blank=True, help_text="Bearer token for the provider, stored sealed (backoffice.sealed)."
    )
    v2g_signer = models.CharField(max_length=10, choices=V2gSigner.choices, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "PKI settings"
        verbose_name_plural = "PKI settings"

    def __str__(self) -> str:
        return f"PKI settings of organization {self.organization_id}"
