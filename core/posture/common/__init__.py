"""Checks that work the same on every OS: host name, client version, named processes
(the generic AV/EDR check and IT's process checks) and IT's file-present checks."""
