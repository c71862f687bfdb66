"""The admin console: server-rendered pages for IT, served by the controller under
``/console`` (issue 20).

Sign-in goes through the organisation's OpenID provider (authorization code + PKCE, admins
by group); the browser holds only an opaque, HttpOnly, Secure session cookie whose hash is
stored server-side, so every replica knows the session. Pages are Jinja2 templates with
autoescaping and a little same-origin JavaScript under a strict Content-Security-Policy;
the live decision feed is a WebSocket fed by each replica's ingest and, with PostgreSQL,
by the other replicas through LISTEN/NOTIFY.

Modules: ``base`` (the contract every page module codes against), ``web`` (sign-in,
sessions, CSRF, security headers, the app), and one module per page group.
"""
