"""Text from visitors and Hub repos, made safe to show: never markup, only the characters it holds.

Gradio renders Markdown (and toasts) as HTML and keeps <a>, <img> and style=: a repo id, a revision, a card's
metric or an error message quoting them could cover the page with a link. Every such string goes through
`plain` (inside Markdown) or `plain_html` (a toast) first; links the app builds are URL-encoded (`url_part`).
"""
import html
import re
from urllib.parse import quote

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation mark: CommonMark escapes each one
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def plain(text, limit: int = 300) -> str:
    """`text` as Markdown that shows exactly these characters: no link, emphasis, HTML or autolink; cut to `limit`."""
    text = _CONTROL.sub(" ", str(text)).replace("\n", " ")
    if len(text) > limit:
        text = text[:limit] + "..."
    escaped = _PUNCTUATION.sub(r"\\\1", text)
    return escaped.replace("\\&", "&amp;").replace("\\<", "&lt;").replace("\\>", "&gt;")


def plain_html(text) -> str:
    """`text` for a place Gradio fills with HTML (an error toast): every tag shows as text."""
    return html.escape(str(text), quote=False)


def url_part(text, safe: str = "") -> str:
    """A piece of a URL the app builds: percent-encoded, so a ) or a space cannot end the link."""
    return quote(str(text), safe=safe)
