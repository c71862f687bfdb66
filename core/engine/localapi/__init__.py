"""The engine's local API: one engine per user session, every front end its client.

- ``protocol``: frames and typed messages (sans I/O), version 1 (docs/local-api.md);
- ``server.LocalApiServer``: serves an ``EngineAPI`` to callers of the same OS user;
- ``client.RemoteEngine``: the ``EngineAPI`` of the engine in another process;
- ``lock.EngineLock``: at most one engine per user session;
- ``agent``: ``rustronaut agent`` and starting/attaching to it from a front end;
- ``transport``: where it listens (Unix socket / named pipe) and who may connect.
"""
