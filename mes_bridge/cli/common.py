"""What every command needs: settings built at start-up, the service layer (``mes_bridge.bootstrap.Services``:
commands go through its handlers, reports through its read-only connections), and uniform error reporting."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import typer
from sqlalchemy.engine import Engine

from mes_bridge.bootstrap import Services
from mes_common.db import make_engine
from mes_common.errors import DomainError
from mes_common.limits import out_of_range
from mes_common.money import BadNumber, dec
from mes_common.settings import Settings


def settings() -> Settings:
    return Settings()


@contextmanager
def services_from_settings() -> Iterator[Services]:
    with Services.from_settings(settings()) as services:
        yield services


@contextmanager
def engine_from_settings() -> Iterator[Engine]:
    """The engine alone, for schema management (``db upgrade``, the demo's first step)."""
    engine = make_engine(settings().resolved_database_url())
    try:
        yield engine
    finally:
        engine.dispose()


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` on stderr and return the Exit to raise (``raise fail(...)``)."""
    print(message, file=sys.stderr)
    return typer.Exit(code)


@contextmanager
def domain_errors() -> Iterator[None]:
    """Turn a refused command into its message on stderr and exit code 1, without a traceback."""
    try:
        yield
    except DomainError as exc:
        raise fail(f"error: {exc.message}") from None


def cli_number(text: str, name: str, *, maximum: Decimal, above: bool = False, signed: bool = False) -> Decimal:
    """A number typed on the command line, within its documented range (``mes_common.limits``): 0 (``above``:
    more than 0; ``signed``: -maximum) to ``maximum``, at most six places; else exit 1 naming ``name``."""
    try:
        number = dec(text, field=name)
    except BadNumber:
        raise fail(f"error: {name} must be a number, got {text[:40]!r}") from None
    minimum = -maximum if signed else Decimal(0)
    problem = out_of_range(number, maximum=maximum, minimum=minimum, above=above and not signed)
    if problem:
        raise fail(f"error: {name}: {problem}")
    return number
