"""Hiding secret values in text that users may read: build logs, errors, job logs.

A secret rarely shows up only as itself. A tool that puts it in a URL prints it percent-encoded
(``quote`` or ``quote_plus``, upper- or lower-case hex, often only some characters encoded);
a JSON document escapes its quotes, backslashes and control characters; an HTTP Basic header
or a config dump holds it in base64. :class:`Redactor` finds each secret in all of these forms
and replaces it with a mask::

    redact = Redactor(["p@ss word<>"])
    redact("GET https://host/p%40ss+word%3C%3E/pkg")  ->  "GET https://host/********/pkg"

Plain, URL-encoded and JSON-escaped forms are matched character by character (each character
literal, percent-encoded, ``+`` for a space, or JSON-escaped), so a mix of them is found too.
Base64 is matched at each of its three alignments, standard and URL-safe, so the secret is
found inside a longer encoded value such as ``user:secret``; what is replaced there is the run
of base64 characters that depend on the secret alone.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable

# The scheme's length is bounded so that a long value without "://" is scanned in linear time.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]{0,31}://)[^/@\s']*@")

MASK = "********"
MIN_LENGTH = 3
"""Shorter values are not hidden: masking every ``a`` or ``10`` would garble the text and hide
nothing worth hiding."""
_JSON_SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n"}
_JSON_SHORT |= {"\r": "\\r", "\t": "\\t"}


class Redactor:
    """Replaces every form of each of ``secrets`` with ``mask``; callable on a text."""

    def __init__(self, secrets: Iterable[str], *, mask: str = MASK) -> None:
        values = sorted({s for s in secrets if s and len(s) >= MIN_LENGTH}, key=len, reverse=True)
        self.mask = mask
        # Whole encodings first, so that a lone base64 value is replaced with its padding.
        alternatives = [re.escape(form) for value in values for form in _whole_base64(value)]
        alternatives += [_text_pattern(value) for value in values]
        alternatives += [re.escape(form) for value in values for form in _base64_cores(value)]
        self._pattern = re.compile("|".join(alternatives)) if alternatives else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(self.mask, text)


def _text_pattern(secret: str) -> str:
    """A regular expression for ``secret`` with each character in any of its common spellings."""
    return "".join(_char_pattern(char) for char in secret)


def _char_pattern(char: str) -> str:
    forms = [re.escape(char)]
    encoded = "".join(f"%[{b >> 4:X}{b >> 4:x}][{b & 15:X}{b & 15:x}]" for b in char.encode())
    forms.append(encoded)  # percent-encoded, either case of hex digit
    if char == " ":
        forms.append(r"\+")  # quote_plus and HTML forms
    if char in _JSON_SHORT:
        forms.append(re.escape(_JSON_SHORT[char]))
    if ord(char) < 0x20 or ord(char) > 0x7E or char in "\"\\'<>&":
        forms.append(_json_unicode(char))
    return "(?:" + "|".join(dict.fromkeys(forms)) + ")"


def _json_unicode(char: str) -> str:
    """``\\uXXXX`` (a surrogate pair beyond the BMP), either case of hex digit."""
    units = json.dumps(char)[1:-1] if ord(char) > 0xFFFF else f"\\u{ord(char):04x}"
    return "".join(f"[{c.upper()}{c.lower()}]" if c in "abcdef" else re.escape(c) for c in units)


def _whole_base64(secret: str) -> list[str]:
    """``secret`` encoded alone: standard and URL-safe, with and without padding."""
    encoded = base64.b64encode(secret.encode()).decode()
    urlsafe = encoded.translate(str.maketrans("+/", "-_"))
    return list(dict.fromkeys([encoded, urlsafe, encoded.rstrip("="), urlsafe.rstrip("=")]))


def _base64_cores(secret: str) -> set[str]:
    """The base64 characters that stand for ``secret`` alone, at each alignment."""
    data = secret.encode()
    forms = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        # Character i carries bits [6i, 6i + 6); keep those made of the secret's bits only.
        start = -(-8 * offset // 6)
        end = 8 * (offset + len(data)) // 6
        core = encoded[start:end]
        if len(core) >= 4:
            forms.add(core)
            forms.add(core.translate(str.maketrans("+/", "-_")))
    return forms


def mask_url_credentials(text: str) -> str:
    """``text`` with the ``user:password@`` of each URL in it replaced by ``***@``.

    For URLs whose credentials are not known as secrets (a ``git.remote`` a user wrote with
    its token in it, a plugin's git URL); known secrets go through :class:`Redactor`.
    """
    return _URL_USERINFO.sub(r"\g<scheme>***@", text)
