"""Pure: the transparency file a driver opens in the S.A.F.E. transparency software (no Django).

The S.A.F.E. e.V. "Transparenzsoftware" (github.com/SAFE-eV/transparenzsoftware, XML_Format.md
and src/main/resources/values.xsd) reads an XML container of signed datasets:

    <values>
      <value transactionId="42" context="Transaction.Begin">
        <signedData format="OCMF" encoding="plain">OCMF|{...}|{...}</signedData>
        <publicKey encoding="hex">3059301306072A8648CE3D0201...</publicKey>
      </value>
      <value transactionId="42" context="Transaction.End">...</value>
    </values>

`transactionId` is an integer; the software pairs a start and an end dataset by it (Values.
findSecondTransaction), so both carry the same number. The OCMF text goes in verbatim: the
signature covers its payload's exact bytes, and no white space may surround it inside the
element (XML_Format.md). The public key is the meter's DER key in hex, as printed on the meter.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

CONTENT_TYPE = "application/xml"
HOW_TO_CHECK = (
    "To check it yourself: open this file in the free S.A.F.E. transparency software "
    "(transparenz.software); it verifies the meter's signature with the public key and shows "
    "the signed start and end readings. Compare the public key with the one on the meter."
)


def transparency_xml(
    *, transaction_id: int, values: list[tuple[str, str]], public_key_hex: str
) -> str:
    """Return the transparency software's XML for OCMF records [(context, "OCMF|...")], each
    with the meter's public key (hex DER; left out when unknown)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<values>"]
    for context, record in values:
        lines.append(
            f"  <value transactionId={quoteattr(str(int(transaction_id)))} "
            f"context={quoteattr(context)}>"
        )
        lines.append(
            f'    <signedData format="OCMF" encoding="plain">{escape(record)}</signedData>'
        )
        if public_key_hex:
            lines.append(
                f'    <publicKey encoding="hex">{escape(public_key_hex.upper())}</publicKey>'
            )
        lines.append("  </value>")
    lines.append("</values>")
    return "\n".join(lines) + "\n"


def file_name(station_id: str, session_id: int) -> str:
    """Return the download's file name: `<station>-session-<id>-signed.xml`, safe characters."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in station_id)[:40]
    return f"{safe}-session-{int(session_id)}-signed.xml"


# The session's signature in plain words, for hosts and drivers (status -> sentence).
STATUS_TEXT = {
    "verified": "Signed by the meter: verified",
    "invalid_signature": (
        "Signed by the meter: not verified. The signature does not match the readings, so "
        "they may have been changed after the meter signed them"
    ),
    "unknown_key": (
        "Signed by the meter: not verified. The meter's public key is not registered for "
        "this charger"
    ),
    "malformed": "Signed by the meter: not verified. The signed data could not be read",
    "incomplete": (
        "Signed by the meter: incomplete. The signed start or end reading did not arrive"
    ),
}


def status_text(status: str) -> str:
    """Return the sentence a page shows for a signature status."""
    return STATUS_TEXT.get(status, "Signed by the meter: not verified")
