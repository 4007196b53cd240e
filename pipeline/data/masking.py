"""Secrets never leave the process: ``mask(text)`` hides passwords in any text, URL or not.

One function for every message, log line and error that may hold a database URL
(``db.redact`` is ``mask`` on a URL; ``tasks.logs`` runs every log record
through it). It does not depend on the URL parsing: SQLAlchemy refuses a URL with
a bad port or an unencoded ``@`` in the password, and such a URL still carries its
password. Three passes, each over-masks rather than under-masks:

1. ``scheme://user:password@...``: the password is everything between the first
   ``:`` after the user name and the *last* ``@`` of that run of non-blank
   characters (so ``p@ss:w@rd``, ``s3c/ret`` or ``s%40cret`` are masked whole).
   A password with blanks ends at the last ``@`` of its line; in a whole URL
   (``redact``), at the last ``@`` of the string.
2. ``password=...`` (any key ending in ``password``, ``passwd`` or ``pwd``:
   ``sslpassword``, ``PGPASSWORD``; ``=`` or ``:``; quoted, or up to the next blank
   or ``&``): libpq DSNs ``host=x password=s3cret``, query strings
   ``?password=s3cret&...`` and dict reprs ``'password': 's3cret'``.
3. Known secrets: the passwords of every URL given to ``remember`` (``db.redact``
   remembers what it masks) and of ``PIPELINE_DATABASE_URL``, raw, percent-decoded
   and percent-encoded, and their pieces between delimiters (``@ : / ? # & ; =``),
   wherever they appear: a driver's message may quote a password without its URL,
   and SQLAlchemy, splitting ``u:p@ss:w0rd@host:5432x`` at the first ``@``, reports
   the port ``'w0rd@host:5432x'``. Secrets shorter than ``MIN_KNOWN`` characters are
   left to passes 1-2, or every log line would lose its vowels.
"""
from __future__ import annotations

import os
import re
import urllib.parse

MASK = "***"
MIN_KNOWN = 4

_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
# in running text: a run of non-blank characters; the greedy password ends at its last '@'
_URL_IN_TEXT = re.compile(rf"(?P<head>{_SCHEME}[^\s:/]*:)(?P<pw>\S*)(?=@)")
# in running text, a password with blanks: the last '@' of the line ends it (tried after the above)
_URL_WITH_BLANKS = re.compile(rf"(?P<head>{_SCHEME}[^\s:/]*:)(?!\*\*\*@)(?P<pw>[^\n]*[ \t][^\n]*)(?=@)")
# a whole URL: blanks allowed, the last '@' of the string ends the password
_WHOLE_URL = re.compile(rf"^(?P<head>\s*{_SCHEME}[^:/]*:)(?P<pw>.*)(?=@)", re.S)
_KEY_VALUE = re.compile(
    r"""(?P<head>(?<![\w.\-])[\w.\-]*(?:password|passwd|pwd)['"]?\s*[=:]\s*)"""
    r"""(?P<pw>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&]+)""",
    re.I,
)
_DELIMITER = re.compile(r"[@:/?#&;=\s]")
_known: set[str] = set()
_remembered_env: str | None = None


def _mask_match(match: re.Match) -> str:
    pw = match.group("pw")
    if pw in (MASK, f"'{MASK}'", f'"{MASK}"'):
        return match.group(0)
    quote = pw[0] if pw[:1] in ("'", '"') and len(pw) > 1 and pw[-1] == pw[0] else ""
    return match.group("head") + quote + MASK + quote


def passwords(url: str) -> set[str]:
    """Every spelling of the password(s) in ``url`` (URL or key/value form), for ``remember``."""
    found = set()
    for pattern in (_WHOLE_URL, _URL_IN_TEXT, _KEY_VALUE):
        for m in pattern.finditer(url):
            pw = m.group("pw")
            if pw[:1] in ("'", '"') and pw[-1:] == pw[:1] and len(pw) > 1:
                pw = pw[1:-1]
            found.add(pw)
    try:  # what SQLAlchemy itself would send (it splits at the first '@')
        import sqlalchemy as sa

        parsed = sa.engine.make_url(url).password
        if parsed:
            found.add(str(parsed))
    except Exception:  # noqa: BLE001 - an unparsable URL: the patterns above found what there is
        pass
    spelled = set()
    for pw in found:
        spelled |= {pw, urllib.parse.unquote(pw), urllib.parse.quote(pw, safe=""), urllib.parse.unquote_plus(pw)}
    for pw in list(spelled):  # the pieces a parser that splits at a delimiter shows as host, port...
        cuts = [m.start() for m in _DELIMITER.finditer(pw)]
        spelled |= {pw[i + 1:] for i in cuts} | {pw[:i] for i in cuts} | set(_DELIMITER.split(pw))
    return {s for s in spelled if s and s != MASK}


def remember(url: str | None) -> None:
    """Mask the password(s) of ``url`` in every later ``mask`` call, wherever they appear."""
    if url:
        _known.update(passwords(url))


def _known_secrets() -> list[str]:
    global _remembered_env
    env = os.environ.get("PIPELINE_DATABASE_URL")
    if env and env != _remembered_env:
        remember(env)
        _remembered_env = env
    # longest first, so that a secret containing another is replaced whole
    return sorted((s for s in _known if len(s) >= MIN_KNOWN), key=len, reverse=True)


def mask(text, *, whole_url: bool = False) -> str:
    """``text`` with every password we can recognise replaced by ``***``.

    ``whole_url``: ``text`` is one URL (blanks inside its password allowed).
    Anything that is not a string is converted with ``str`` first.
    """
    text = str(text)
    if whole_url:
        text = _WHOLE_URL.sub(_mask_match, text, count=1)
    text = _URL_IN_TEXT.sub(_mask_match, text)
    text = _URL_WITH_BLANKS.sub(_mask_match, text)
    text = _KEY_VALUE.sub(_mask_match, text)
    for secret in _known_secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def holds_secret(text) -> bool:
    """Whether ``mask`` would change ``text``."""
    return mask(text) != str(text)
