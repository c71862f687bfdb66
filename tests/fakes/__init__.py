"""Shared fakes and helpers of the test suite, imported as ``tests.fakes.<module>``.

Tests import these like any other package (pytest runs with ``--import-mode=importlib``
and the repository root on ``sys.path``), never by editing ``sys.path``:

- :mod:`tests.fakes.wait`: ``wait_until`` / ``async_wait_until``, the condition waits
  that replace fixed sleeps before asserts.
- :mod:`tests.fakes.installers`: throwaway roots, GnuPG homes, code-signing CAs and
  command helpers of the installer tests.
"""
