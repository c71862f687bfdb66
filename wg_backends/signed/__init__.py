"""Signed documents, below both the client's core and the privileged helper.

The verification primitives every signed object passes through, in one place that both
``core`` (the engine, the controller's wire formats) and ``wg_backends.helper`` (which
verifies policy bundles itself, issue 16) can import — ``wg_backends`` never imports
``core``, so they live here and ``core.wire`` re-exports them unchanged:

- :mod:`wg_backends.signed.canonical`: canonical JSON and the nesting-depth check
  (re-exported as ``core.wire.canonical``);
- :mod:`wg_backends.signed.jws`: Ed25519 JWS compact verify/sign and key helpers
  (re-exported as ``core.wire.signing``);
- :mod:`wg_backends.signed.endorsement`: a root key's statement vouching for a signing
  key or a successor root (re-exported as ``core.wire.endorsement``).

Imports only the standard library, msgspec and cryptography (joserfc lazily, to sign).
"""
