"""Who is asking: the client address of a request, the same for the upload route and the queue.

On a Hugging Face Space the app sits behind the Hub's proxy, which appends the address it saw to
X-Forwarded-For; only that last entry is trusted (a client can write any earlier ones). Elsewhere the
connection's own address is used. PIXELRNN_PROXIES says how many proxies stand in front (default: 1 on a Space).
"""
import os


def proxies() -> int:
    return int(os.environ.get("PIXELRNN_PROXIES", 1 if os.environ.get("SPACE_ID") else 0))


def address(headers, peer: str | None) -> str:
    """`headers`: a mapping with lower-case names (or a list of (bytes, bytes) as in an ASGI scope)."""
    count = proxies()
    if count:
        if isinstance(headers, list):
            values = [value.decode("latin-1") for name, value in headers if name.lower() == b"x-forwarded-for"]
        else:
            values = [headers.get("x-forwarded-for", "")]
        chain = [part.strip() for part in ",".join(values).split(",") if part.strip()]
        if len(chain) >= count:
            return chain[-count]
    return peer or "unknown"
