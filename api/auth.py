"""API tokens and the principal they stand for: a role, and for terminals / collectors their bindings."""

from __future__ import annotations
