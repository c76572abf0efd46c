"""Lianka (联卡): multi-tenant membership marketing.

This directory is only the import root. Its subpackages are symlinks to the top-level folders
(``lianka/platform -> ../platform`` …) so that no top-level ``platform`` package can ever shadow the
standard library's ``platform`` module (see docs/decisions/0001-import-root-symlinks.md).
"""

__version__ = "0.1.0"
