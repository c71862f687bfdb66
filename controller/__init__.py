"""The reference controller: a compact, self-hostable control plane.

It serves discovery, enrollment, posture, signed policy bundles, an event stream and an
admin API, and can run a development OIDC provider for demos and tests. It shares the wire
models of ``core.wire`` and ``wg_backends.spec`` so the format has one definition; it
never imports ``app``.
"""
