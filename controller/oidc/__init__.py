"""Development OIDC provider built on Authlib's server side (demo and tests only).

Mounted under ``<controller>/oidc``; it serves discovery, JWKS (with ``kid``), the
authorization endpoint with a plain HTML login form, the token endpoint (authorization
code + PKCE S256, refresh with rotation, device code grant), device authorization with a
verification form, revocation and userinfo. Users and groups come from the controller
configuration. Access tokens are JWTs (RS256 or EdDSA) the controller validates exactly
as it would validate an external issuer's. State is in memory: a restart signs everyone
out, which is what a development provider should do.
"""

from controller.oidc.provider import DevOidcProvider

__all__ = ["DevOidcProvider"]
