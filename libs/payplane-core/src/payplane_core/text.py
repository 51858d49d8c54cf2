"""Strings that can be stored: refused at the edge, not discovered by the database.

PostgreSQL ``text`` and ``jsonb`` cannot hold NUL (U+0000), and a lone surrogate (U+D800..DFFF,
reachable through JSON's ``\\ud800`` escape) cannot be encoded as UTF-8 at all. Use ``CleanStr``
for every string a client sends (bodies, query parameters, path ids); ``storable`` makes
untrusted text safe to keep for audit without refusing it.
"""

import re
from typing import Annotated

from pydantic import AfterValidator


def refuse_unstorable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


CleanStr = Annotated[str, AfterValidator(refuse_unstorable)]
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def split_csv(value: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: the one way a comma-separated setting or option is
    read (environment variables, CLI flags, headers)."""
    return [part.strip() for part in value.split(",") if part.strip()]


def storable(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, NUL and unencodable characters replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", value[:limit])
