"""The operator's scan terminal and the accountant's WIP dashboard (server-rendered pages).

Placeholder router so `create_app` can include it; the pages follow.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["pages"])
