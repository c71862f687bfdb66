"""WireGuard over an mTLS relay when the network drops UDP (issue 21).

``frames``: the stream's framing, shared with the reference relay (``controller.relay``).
"""
