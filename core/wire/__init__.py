"""Wire formats shared by the client and the reference controller.

One definition of every signed or exchanged document: the JWS signing envelope
(``core.wire.signing``), the policy bundle (``core.wire.policy``) and the posture report
(``core.wire.posture``). Models are ``msgspec`` structs: strict, frozen, unknown fields
refused, parsed once at the boundary. Imports only the standard library, msgspec,
cryptography/joserfc and ``wg_backends.spec`` (the tunnel spec).
"""
