"""The windows the tray opens: main/resources, posture, activity, settings, sign-in, about.

Each window takes the ``EngineBridge`` (to subscribe) and ``Actions`` (to act) in its
constructor, renders from the current snapshot at once and again on every
``snapshot_changed``; buttons call ``Actions`` and nothing else. GUI thread only.
"""
