"""The reference controller: a compact, self-hostable control plane.

It serves discovery, enrollment, posture, signed policy bundles, an event stream and an
admin API, and can run a development OIDC provider for demos and tests. It shares the wire
models of ``core.wire``, ``core.controlplane.models`` and ``wg_backends.spec`` so the
format has one definition, and evaluates reachability with ``core.policy``'s engine so
both sides agree on semantics; it never imports ``app``.

Modules: ``app`` (HTTP layer, one operation table → routes and OpenAPI), ``openapi``
(the generated contract; ``openapi.json`` is its committed copy), ``service`` (the
logic, free of HTTP), ``storage`` (SQLite/PostgreSQL with migrations), ``keys``
(bundle-signing key ring, rotation by ``kid``), ``tokens`` (bearer validation against
trusted issuers' JWKS), ``oidc`` (the development provider, Authlib server side),
``gateway`` (``wg set`` through an injected runner), ``events`` (SSE fan-out),
``reach`` (which resources a device may reach), ``cli`` (``rustronaut-controller``) and
``testing`` (``run_controller()``: the whole thing on loopback for tests and demos).
Refusals are ``controller.errors.ApiError`` subclasses, sent as RFC 9457 problems.
"""
