"""The end-to-end demo and its test bed: everything real, on one machine.

``bed`` builds network namespaces joined by veth pairs (a gateway with a real WireGuard
interface and resource servers behind it, and a client namespace), ``robot`` signs a demo
user in through the development OIDC provider's login page as a browser would, ``client``
runs the real engine (helper, tunnel, proxy) in the client namespace, and ``__main__``
is the README's first command. The engine's end-to-end tests use the same pieces.
Linux and root only.
"""
