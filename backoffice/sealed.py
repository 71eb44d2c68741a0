"""Secrets we must send to someone else (an upstream backoffice's password, a partner's API key):
stored encrypted with a key derived from SECRET_KEY, never in clear, never hashed (we need them back).

Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`. Rotating SECRET_KEY makes sealed values
unreadable: keep the old key in SECRET_KEY_FALLBACKS (Django's own setting) and they still open.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

PREFIX = "fernet:"


def _fernet(secret: str) -> Fernet:
    key = hashlib.sha256(b"evportal.sealed:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _keys() -> MultiFernet:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(s) for s in secrets if s])


def seal(text: str) -> str:
    """Encrypt `text` for storage ("" stays "")."""
    if not text:
        return ""
    return PREFIX + _keys().encrypt(text.encode()).decode()


def unseal(stored: str) -> str:
    """The text `seal` was given; "" for "" or a value no current key opens."""
    if not stored or not stored.startswith(PREFIX):
        return ""
    try:
        return _keys().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        return ""
