"""The single owner of the session: sign-in → enrolled → posture → policy → tunnel → proxy.

``core.engine.state`` defines the states, the immutable snapshot the front ends render and
the events the engine emits; ``Engine`` (in ``core.engine.engine``) runs the effects. The
tray (``app``) and the CLI are views on it. No Qt here.
"""
