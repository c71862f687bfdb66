"""The reference relay: WireGuard over TLS 1.3 mTLS for networks that drop UDP (issue 21).

A small process of its own (``python -m controller.relay --config F`` or
``rustronaut-controller relay --config F``). Devices connect with the client certificate
the controller's relay CA issued to their helper's relay key (``controller.relayca``);
the relay admits a device only while the controller lists it with that key
(``directory``), and forwards its WireGuard datagrams, framed as in
``wg_backends.relay.frames``, over UDP to a gateway named in the config and back
(``server``). The JSON config (``config``)::

    {"name": "relay1", "listen": "0.0.0.0:443",
     "cert_file": "relay.pem", "key_file": "relay.key",
     "client_ca_file": "<controller keys dir>/relay-ca.pem",
     "controller_url": "http://127.0.0.1:8443", "token_file": "relay-token",
     "gateways": ["10.241.0.1:51820"],
     "max_streams": 1000, "queue_bytes": 262144, "poll_interval_s": 0.5}

Errors: :class:`~controller.relay.config.ConfigError` for the config; ``OSError`` /
``ssl.SSLError`` when the listener or certificate files fail at start. The process logs
``relay <name> listening on <host>:<port>`` once the first device list arrived.
"""

from controller.relay.config import ConfigError, RelayProcessConfig, load_config
from controller.relay.directory import Directory
from controller.relay.server import RelayServer, RelayStats

__all__ = [
    "ConfigError",
    "Directory",
    "RelayProcessConfig",
    "RelayServer",
    "RelayStats",
    "load_config",
]
