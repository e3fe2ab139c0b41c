"""Keeps API tokens out of the access log.

The dashboard's server-sent stream takes its token as ``?token=`` (EventSource cannot send headers), and uvicorn's
access log writes every request's path with its query string. ``HideTokens`` is a logging filter that ``mes-bridge
serve`` puts on uvicorn's access handler: the value of every ``token`` query parameter is written ``***``; the
rest of the line is untouched.
"""

from __future__ import annotations

import logging
import re

TOKEN_PARAM = re.compile(r"([?&]token=)[^&#\s\"]*", re.IGNORECASE)


def hide_tokens(text: str) -> str:
    """``text`` with the value of every ``token`` query parameter replaced by ``***``."""
    return TOKEN_PARAM.sub(r"\1***", text)


class HideTokens(logging.Filter):
    """Rewrites a record's message and string arguments (uvicorn's access log passes the path as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = hide_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(hide_tokens(a) if isinstance(a, str) else a for a in record.args)
        return True
