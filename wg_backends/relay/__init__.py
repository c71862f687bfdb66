"""WireGuard over an mTLS relay when the network drops UDP (issue 21).

``frames``: the stream's framing, shared with the reference relay (``controller.relay``).
``client``: the helper's TLS connection to a relay (trust store, pins, client certificate,
probe and stream). ``bridge``: the loopback UDP endpoint WireGuard talks to while on a
relay. ``choose``: which relay, from measured RTT and load (pure). ``supervisor``: per
tunnel, UDP or relay and when to change.
"""
