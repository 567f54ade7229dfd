"""One Azure credential per process.

In Azure: `ManagedIdentityCredential(client_id=AZURE_CLIENT_ID)` (the user-assigned identity infra
creates). `DefaultAzureCredential` is only for local development, because it tries environment
credentials (client secrets) first, and a stray secret in app settings must never win.
"""

from __future__ import annotations

from functools import lru_cache

from azure.core.credentials import TokenCredential
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from shared.config import Settings, get_settings


def build_credential(settings: Settings) -> TokenCredential:
    if settings.is_development and settings.client_id is None:
        return DefaultAzureCredential(exclude_interactive_browser_credential=True)
    return ManagedIdentityCredential(client_id=settings.client_id)


@lru_cache(maxsize=1)
def get_credential() -> TokenCredential:
    return build_credential(get_settings())
