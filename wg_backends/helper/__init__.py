"""The privileged helper (``rustronaut-helper``) and the unprivileged side's IPC client.

The helper is the only part of the client that runs as root/admin. It listens on a Unix
socket (``transport``) or, on Windows, a named pipe (``winpipe``; run as the service of
``winservice``) — never on the network —, authorises callers by their OS identity,
speaks the small versioned protocol of ``protocol`` (documented in
docs/helper-protocol.md), accepts only
``TunnelSpec`` s and runs one backend. ``client.HelperClient`` is what unprivileged code
(``core.tunnel``) uses to talk to it.
"""
