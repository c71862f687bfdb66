"""Policy on the device: verify signed bundles, hold the current one, decide connections.

``core.policy.api`` holds the request/decision types every caller uses (the proxy, the
CLI's ``policy explain``, the UI). Deny by default: no valid bundle means every decision
is a deny. Imports only ``core.wire`` and the standard library.
"""
