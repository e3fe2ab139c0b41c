"""CSV cell checks: characters that hide or deceive, and the typed columns that parse one field.

Every field (and the header) is checked for characters that hide or deceive before it is parsed: format
characters (category Cf: U+200B/C/D ZERO WIDTH ..., U+2060 WORD JOINER, U+FEFF, also as a byte-order mark),
spaces other than U+0020 (Zs: U+00A0 NO-BREAK SPACE ...), control characters (Cc: tab, CR, LF inside a
field), line/paragraph separators, private-use and unassigned code points (``hidden_chars``). A bad character
is named by its code point, Unicode name and 1-based position in the field (``describe_char``).

Columns (all take ``required=True``; an empty optional field parses to ``None``, see
``mes_common.csv_validation``):

- ``Code(name, max_length=64)``: identifiers (item, location, work-center codes). Printable ASCII only, no
  spaces: any other character is refused, and Cyrillic/Greek/fullwidth look-alikes of Latin letters are named
  as such ("U+0410 CYRILLIC CAPITAL LETTER A, looks like Latin 'A'").
- ``Text(name, max_length=200)``: free text (names, quality standards). Any printable Unicode, but invisible
  characters and Latin words holding a Cyrillic/Greek look-alike of a Latin letter are refused.
- ``Number(name, minimum=None, positive=False, places=None)``: a plain decimal (``-12.5``; no exponent, no
  thousands separator) parsed to ``Decimal``; ``minimum=Decimal(0)`` refuses negatives.
- ``Integer(name, minimum=None)``: a whole number, parsed to ``int``.
- ``Date(name)``: ``YYYY-MM-DD``, parsed to ``datetime.date``.
- ``Boolean(name)``: ``true`` / ``false`` (any case), parsed to ``bool``.
- ``Choice(name, choices)``: one of a fixed set of lower-case words, parsed to ``str``.

``Column.check_chars`` returns the messages for refused characters; ``Column.parse`` raises ``FieldError``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from mes_common.limits import MAX_OPERATION, MAX_QTY

_CONTROL_NAMES = {
    0x00: "NULL",
    0x09: "CHARACTER TABULATION",
    0x0A: "LINE FEED",
    0x0B: "LINE TABULATION",
    0x0C: "FORM FEED",
    0x0D: "CARRIAGE RETURN",
    0x1B: "ESCAPE",
    0x7F: "DELETE",
    0x85: "NEXT LINE",
}
_SUSPICIOUS_CATEGORIES = {"Cf", "Cc", "Zs", "Zl", "Zp", "Co", "Cn", "Cs"}

# Non-Latin letters that render like Latin ones (the usual suspects of a copy-paste from another keyboard
# layout). Written as escapes so this file itself holds no look-alikes.
_HOMOGLYPHS: dict[str, str] = {
    # Cyrillic capitals
    "\u0410": "A", "\u0412": "B", "\u0415": "E", "\u041a": "K", "\u041c": "M", "\u041d": "H", "\u041e": "O",
    "\u0420": "P", "\u0421": "C", "\u0422": "T", "\u0425": "X", "\u0405": "S", "\u0406": "I", "\u0408": "J",
    "\u04c0": "I", "\u0423": "Y",
    # Cyrillic small
    "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0443": "y", "\u0445": "x",
    "\u0455": "s", "\u0456": "i", "\u0458": "j", "\u04cf": "l", "\u0501": "d", "\u051b": "q", "\u051d": "w",
    # Greek capitals
    "\u0391": "A", "\u0392": "B", "\u0395": "E", "\u0396": "Z", "\u0397": "H", "\u0399": "I", "\u039a": "K",
    "\u039c": "M", "\u039d": "N", "\u039f": "O", "\u03a1": "P", "\u03a4": "T", "\u03a5": "Y", "\u03a7": "X",
    # Greek small
    "\u03bf": "o", "\u03bd": "v", "\u03b9": "i", "\u03ba": "k", "\u03c1": "p", "\u03c5": "u",
}  # fmt: skip


def describe_char(ch: str) -> str:
    """``U+00A0 NO-BREAK SPACE``: the code point and its Unicode name (control characters by their alias)."""
    cp = ord(ch)
    name = unicodedata.name(ch, None) or _CONTROL_NAMES.get(cp) or f"<{unicodedata.category(ch)}>"
    return f"U+{cp:04X} {name}"


def lookalike_of(ch: str) -> str | None:
    """The ASCII character ``ch`` is easily mistaken for, or None."""
    if ch in _HOMOGLYPHS:
        return _HOMOGLYPHS[ch]
    if "\uff01" <= ch <= "\uff5e":  # fullwidth ASCII forms
        return chr(ord(ch) - 0xFEE0)
    folded = unicodedata.normalize("NFKD", ch)
    base = "".join(c for c in folded if not unicodedata.combining(c))
    if len(base) == 1 and base.isascii() and base.isalnum() and base != ch:
        return base  # accented Latin letter, e.g. U+00C9 -> 'E'
    return None


def hidden_chars(value: str) -> list[tuple[int, str]]:
    """(1-based position, character) of every invisible, control or unusual-space character in ``value``."""
    if value.isascii() and value.isprintable():  # the common case: printable ASCII hides nothing
        return []
    found = []
    for pos, ch in enumerate(value, start=1):
        if ch == " ":
            continue
        if unicodedata.category(ch) in _SUSPICIOUS_CATEGORIES:
            found.append((pos, ch))
    return found


def _script(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    for script in ("LATIN", "CYRILLIC", "GREEK"):
        if name.startswith(script):
            return script
    return "OTHER"


class FieldError(ValueError):
    """Raised by ``Column.parse`` with the message of the issue."""


@dataclass(frozen=True)
class Column:
    """One expected column; subclasses parse the text into a typed value."""

    name: str
    required: bool = field(default=True, kw_only=True)

    def check_chars(self, value: str) -> list[str]:
        """Messages for characters this column refuses (before parsing)."""
        messages = []
        for pos, ch in hidden_chars(value):
            messages.append(f"{describe_char(ch)} at position {pos} (invisible or control character)")
        return messages

    def parse(self, value: str) -> object:
        return value


@dataclass(frozen=True)
class Code(Column):
    """An identifier: printable ASCII without spaces, at most ``max_length`` characters."""

    max_length: int = 64

    def check_chars(self, value: str) -> list[str]:
        if value.isascii() and value.isprintable():  # the common case, and nothing to report
            return []
        messages = []
        hidden = {pos for pos, _ in hidden_chars(value)}
        for pos, ch in enumerate(value, start=1):
            if pos in hidden:
                messages.append(f"{describe_char(ch)} at position {pos} (invisible or control character)")
            elif not ch.isascii():
                like = lookalike_of(ch)
                hint = f", looks like Latin '{like}'" if like else ""
                messages.append(f"{describe_char(ch)} at position {pos} (not allowed in a code{hint})")
        return messages

    def parse(self, value: str) -> object:
        if " " in value:
            raise FieldError(f"space inside code {value!r} at position {value.index(' ') + 1}")
        if len(value) > self.max_length:
            raise FieldError(f"code longer than {self.max_length} characters ({len(value)})")
        return value


@dataclass(frozen=True)
class Text(Column):
    """Free text in any script, without invisible characters or Latin words holding Cyrillic/Greek look-alikes."""

    max_length: int = 200

    def check_chars(self, value: str) -> list[str]:
        messages = super().check_chars(value)
        if value.isascii():  # no other script to mix in
            return messages
        for match in re.finditer(r"\w+", value):
            word = match.group()
            if not any(_script(ch) == "LATIN" for ch in word):
                continue
            # Only letters that pass for Latin ones: "10k\u03a9" or "\u03bcm" are honest Greek, "B\u043elt" is not.
            for offset, ch in enumerate(word):
                if _script(ch) in ("CYRILLIC", "GREEK") and ch in _HOMOGLYPHS:
                    pos = match.start() + offset + 1
                    messages.append(
                        f"{describe_char(ch)} at position {pos} in word {word!r} mixes scripts "
                        f"(looks like Latin '{_HOMOGLYPHS[ch]}')"
                    )
                    break
        return messages

    def parse(self, value: str) -> object:
        if len(value) > self.max_length:
            raise FieldError(f"text longer than {self.max_length} characters ({len(value)})")
        return value


def _shown(value: str) -> str:
    """A field's text as quoted in a message: its start only when it is long."""
    return value if len(value) <= 40 else f"{value[:40]}... ({len(value)} characters)"


_DECIMAL_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_INTEGER_RE = re.compile(r"-?[0-9]+")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class Number(Column):
    """A plain decimal number (``-12.50``), parsed to ``Decimal``."""

    minimum: Decimal | None = None
    positive: bool = False
    places: int | None = None
    maximum: Decimal = MAX_QTY  # every number has a documented range (``mes_common.limits``)

    def parse(self, value: str) -> object:
        if len(value) > 40 or not _DECIMAL_RE.fullmatch(value):
            hint = " (use '.' as the decimal separator, no thousands separator)" if "," in value else ""
            raise FieldError(f"{_shown(value)!r} is not a decimal number{hint}")
        try:
            number = Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern already guarantees a valid literal
            raise FieldError(f"{value!r} is not a decimal number") from None
        if self.positive and number <= 0:
            raise FieldError(f"{value} must be greater than zero")
        if number < 0 and self.minimum is not None and self.minimum >= 0:
            raise FieldError(f"{value} is negative")
        if self.minimum is not None and number < self.minimum:
            raise FieldError(f"{value} is below the minimum {self.minimum}")
        if self.places is not None and -number.as_tuple().exponent > self.places:  # type: ignore[operator]
            raise FieldError(f"{value} has more than {self.places} decimal places")
        if abs(number) > self.maximum:
            low = "above 0" if self.positive else f"{self.minimum:,}" if self.minimum is not None else \
                f"-{self.maximum:,}"
            raise FieldError(f"{_shown(value)} is out of range (allowed: {low} to {self.maximum:,})")
        return number


@dataclass(frozen=True)
class Integer(Column):
    """A whole number, parsed to ``int``."""

    minimum: int | None = None
    maximum: int = MAX_OPERATION  # the integers of the imports are operation numbers

    def parse(self, value: str) -> object:
        if len(value) > 40 or not _INTEGER_RE.fullmatch(value):
            raise FieldError(f"{_shown(value)!r} is not a whole number")
        number = int(value)
        if self.minimum is not None and number < self.minimum:
            raise FieldError(f"{value} is negative" if self.minimum == 0 else f"{value} is below {self.minimum}")
        if number > self.maximum:
            raise FieldError(f"{_shown(value)} is out of range (allowed: {self.minimum or 0} to {self.maximum:,})")
        return number


@dataclass(frozen=True)
class Date(Column):
    """A calendar date ``YYYY-MM-DD``."""

    def parse(self, value: str) -> object:
        if not _DATE_RE.fullmatch(value):
            raise FieldError(f"{value!r} is not a date (expected YYYY-MM-DD)")
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise FieldError(f"{value!r} is not a valid date ({exc})") from None


@dataclass(frozen=True)
class Boolean(Column):
    """``true`` or ``false``, any case."""

    def parse(self, value: str) -> object:
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        raise FieldError(f"{value!r} is not a boolean (expected true or false)")


@dataclass(frozen=True)
class Choice(Column):
    """One of ``choices``."""

    choices: tuple[str, ...] = ()

    def parse(self, value: str) -> object:
        if value not in self.choices:
            raise FieldError(f"{value!r} is not one of {', '.join(self.choices)}")
        return value
