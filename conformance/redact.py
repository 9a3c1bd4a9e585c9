"""Keep credentials out of everything the suite prints or writes.

Two layers: header values that are credentials by their name are replaced outright, and every known secret
(password, token, API key) is replaced wherever else it appears (URLs, bodies, messages).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MASK", "SENSITIVE_HEADERS", "Redactor"]

MASK = "***"
SENSITIVE_HEADERS = frozenset(
    {"authorization", "x-api-key", "cookie", "set-cookie", "proxy-authorization", "x-mock-control-token"}
)
# JSON or form fields whose value is a credential whatever it is (a generated password is still a password).
_SENSITIVE_FIELDS = ("password", "client_secret", "access_token", "api_key", "token")
_FIELD_JSON = re.compile(r'("(?:' + "|".join(_SENSITIVE_FIELDS) + r')"\s*:\s*)"(?:[^"\\]|\\.)*"')
_FIELD_FORM = re.compile(r"(?<![A-Za-z_])((?:" + "|".join(_SENSITIVE_FIELDS) + r")=)[^&\s']*")
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+")


class Redactor:
    """Replaces credentials with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def extend(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({*self.secrets, *(s for s in secrets if s and len(s) >= 3)}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        value = _FIELD_JSON.sub(lambda m: f'{m.group(1)}"{MASK}"', value)
        value = _FIELD_FORM.sub(lambda m: f"{m.group(1)}{MASK}", value)
        return _BEARER.sub(lambda m: f"{m.group(1)}{MASK}", value)

    def header(self, name: str, value: str) -> str:
        if name.lower() in SENSITIVE_HEADERS:
            return MASK
        return self.text(value)

    __call__ = text
