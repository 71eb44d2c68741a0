"""pki.chains (pure): an OCSP answer is relied on only when it is the issuer's (or its delegate's)
signed answer for the very certificate asked about; chains lead to the roots given or not at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.verification import VerificationError

from pki import chains

from .pkitools import issue


def _response(
    subject, issuer, signer_key, signer_cert, *, status=ocsp.OCSPCertStatus.GOOD, certs=()
):
    now = datetime.now(UTC)
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=subject.certificate,
        issuer=issuer.certificate,
        algorithm=hashes.SHA256(),
        cert_status=status,
        this_update=now - timedelta(minutes=1),
        next_update=now + timedelta(days=1),
        revocation_time=now if status == ocsp.OCSPCertStatus.REVOKED else None,
        revocation_reason=None,
    )
    if certs:
        builder = builder.certificates(list(certs))
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
    return builder.sign(signer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.fixture
def pair():
    root = issue("Root", None, ca=True)
    leaf = issue("DE-8EO-C12345678-9", root, ca=False)
    return root, leaf


def test_the_issuers_signed_answer_is_read(pair):
    root, leaf = pair
    der = _response(leaf, root, root.key, root.certificate, status=ocsp.OCSPCertStatus.REVOKED)
    answer = chains.check_ocsp_response(
        der,
        chains.cert_id_of(leaf.certificate, root.certificate),
        root.certificate,
        datetime.now(UTC),
    )
    assert answer.status == "revoked" and answer.der == der


def test_an_answer_signed_by_anyone_else_is_refused(pair):
    root, leaf = pair
    impostor = issue("Root", None, ca=True)  # same name, another key
    der = _response(leaf, root, impostor.key, impostor.certificate)
    with pytest.raises(chains.OcspRefused):
        chains.check_ocsp_response(
            der,
            chains.cert_id_of(leaf.certificate, root.certificate),
            root.certificate,
            datetime.now(UTC),
        )


def test_a_delegated_responder_needs_the_ocsp_signing_usage(pair):
    root, leaf = pair
    delegate = issue("Responder", root, ca=False)
    der = _response(leaf, root, delegate.key, delegate.certificate, certs=[delegate.certificate])
    cert_id = chains.cert_id_of(leaf.certificate, root.certificate)
    with pytest.raises(chains.OcspRefused):
        chains.check_ocsp_response(der, cert_id, root.certificate, datetime.now(UTC))


def test_an_answer_about_another_certificate_is_refused(pair):
    root, leaf = pair
    other = issue("Other", root, ca=False)
    der = _response(other, root, root.key, root.certificate)
    with pytest.raises(chains.OcspRefused):
        chains.check_ocsp_response(
            der,
            chains.cert_id_of(leaf.certificate, root.certificate),
            root.certificate,
            datetime.now(UTC),
        )


def test_an_out_of_date_answer_is_refused(pair):
    root, leaf = pair
    der = _response(leaf, root, root.key, root.certificate)
    later = datetime.now(UTC) + timedelta(days=3)
    with pytest.raises(chains.OcspRefused):
        chains.check_ocsp_response(
            der, chains.cert_id_of(leaf.certificate, root.certificate), root.certificate, later
        )


def test_ocpp_hash_data_round_trips_and_bad_data_is_refused(pair):
    root, leaf = pair
    cert_id = chains.cert_id_of(leaf.certificate, root.certificate)
    data = chains.cert_id_to_ocpp(cert_id, "http://ocsp.example/")
    assert chains.cert_id_from_ocpp(data) == cert_id
    assert chains.issued_by(cert_id, root.certificate)
    with pytest.raises(ValueError):
        chains.cert_id_from_ocpp({**data, "issuerNameHash": "aabbccdd"})
    with pytest.raises(ValueError):
        chains.cert_id_from_ocpp({**data, "hashAlgorithm": "MD5"})


def test_a_chain_leads_only_to_the_roots_given(pair):
    root, leaf = pair
    now = datetime.now(UTC)
    assert (
        chains.verify_chain(leaf.certificate, [], [root.certificate], now)[-1] == root.certificate
    )
    with pytest.raises(VerificationError):
        chains.verify_chain(leaf.certificate, [], [issue("Root", None, ca=True).certificate], now)
    with pytest.raises(VerificationError):
        chains.verify_chain(leaf.certificate, [], [], now)
    assert isinstance(leaf.certificate, x509.Certificate)
