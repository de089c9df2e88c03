"""A bound on what one session, and one client address, may have waiting or running in Gradio's queue.

Without it, one client filling the queue (64 places) makes every other visitor's request "Queue is full".
A request over the bound is refused at once with a message; the others are served as before.
"""
import asyncio
import os

from . import clients

PER_SESSION = int(os.environ.get("PIXELRNN_QUEUED_PER_SESSION", 4))
PER_ADDRESS = int(os.environ.get("PIXELRNN_QUEUED_PER_ADDRESS", 8))


def bound(queue) -> None:
    """Wrap `queue.push` (gradio.queueing.Queue) with the bounds."""
    push, lock = queue.push, asyncio.Lock()

    async def bounded_push(body, request, username):
        async with lock:  # counted and added together: two requests at once cannot both take the last place
            problem = _over(queue, body.session_hash, _address(request))
            if problem:
                return False, problem, "error"  # HTTP 400 with the message: not "Queue is full" for everyone
            return await push(body, request, username)

    queue.push = bounded_push


def _over(queue, session, address) -> str | None:
    events = list(queue.event_ids_to_events.values())  # every event waiting or running
    if session is not None and sum(e.session_hash == session for e in events) >= PER_SESSION:
        return f"this page already has {PER_SESSION} requests waiting or running: wait for one to finish"
    if sum(_address(e.request) == address for e in events) >= PER_ADDRESS:
        return f"your address already has {PER_ADDRESS} requests waiting or running: wait for one to finish"
    return None


def _address(request) -> str:
    try:
        return clients.address({k.lower(): v for k, v in request.headers.items()}, request.client.host if request.client else None)
    except AttributeError:
        return "unknown"
