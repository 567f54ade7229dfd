"""Authentication: bearer extraction, OIDC discovery, JWKS cache and token validation (Entra ID v2).

Routes do not call this directly: `shared.http_route.phi_route` runs it for them.
"""

from shared.auth.bearer import extract_bearer_token
from shared.auth.rejected import TokenRejected
from shared.auth.validator import TokenValidator, get_token_validator

__all__ = ["TokenRejected", "TokenValidator", "extract_bearer_token", "get_token_validator"]
