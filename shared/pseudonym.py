"""Keyed pseudonyms: HMAC-SHA256 over a stable id, with the key from Key Vault.

Token format: `v<key version>:<64 hex>`. The key version names the Key Vault secret version, so the
key can rotate: tokens made under different keys never match (unlinkable by design), and the prefix
tells a consumer which key made a token. The kind ("patient") is part of the MAC input, so the same
id in two namespaces gives unrelated tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from shared.secrets import SecretsProvider

_VERSION_SAFE = re.compile(r"[^A-Za-z0-9]")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class KeyedPseudonymizer:
    def __init__(self, secrets: SecretsProvider, secret_name: str) -> None:
        self._secrets = secrets
        self._secret_name = secret_name

    def pseudonym(self, kind: str, stable_id: str) -> str:
        if not _KIND.match(kind):
            raise ValueError("pseudonym kind must be a short lowercase name")
        secret = self._secrets.get(self._secret_name)  # cached; fails closed with a 503 error
        version = _VERSION_SAFE.sub("", secret.version)[:64] or "0"
        mac = hmac.new(secret.value.encode(), f"{kind}\x1f{stable_id}".encode(), hashlib.sha256)
        return f"v{version}:{mac.hexdigest()}"
