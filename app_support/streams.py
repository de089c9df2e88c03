"""The pace of a streamed answer: which steps are sent, as which files, and when a curve is redrawn.

A person cannot see 28 rows in 0.1 s, and sending each one costs the page a PNG, numbers and a plot: a stream
sends at most FRAMES_PER_SECOND pictures (the first and the last always) and redraws its curves every
PLOT_EVERY seconds (and with the last step). A request that runs past REQUEST_SECONDS stops with a message:
one visitor cannot hold the app. The limits are read from limits.py when a stream starts.
"""
import secrets
import time

import pixelrnn

from . import limits


class Stream:
    """One request's frames: `for step in stream.paced(steps)`, each picture through `stream.picture`."""

    def __init__(self, plot_first: bool = False):
        self.prefix, self.count = secrets.token_hex(8), 0
        self.plotted_at = -float("inf") if plot_first else time.monotonic()

    def paced(self, steps):
        """The steps worth showing: the first at once, then at most FRAMES_PER_SECOND, and always the last one."""
        per_second, max_seconds = limits.FRAMES_PER_SECOND, limits.REQUEST_SECONDS
        pending, shown_at, deadline = None, -float("inf"), time.monotonic() + max_seconds
        for step in steps:
            if time.monotonic() > deadline:
                raise pixelrnn.PixelRNNError(
                    f"stopped after {max_seconds:.0f} s, the limit of one request here: ask for fewer images, "
                    "or run this model with the library on your own machine"
                )
            if time.monotonic() - shown_at >= 1 / per_second:
                pending = None
                yield step
                shown_at = time.monotonic()  # counted from when the page has taken the frame: its own time is not drawing time
            else:
                pending = step
        if pending is not None:
            yield pending

    def plot_due(self, last: bool = False) -> bool:
        """Whether to redraw the curves now: PLOT_EVERY seconds after the last time, and with the last step."""
        if last or time.monotonic() - self.plotted_at > limits.PLOT_EVERY:
            self.plotted_at = time.monotonic()
            return True
        return False

    def picture(self, x, model):
        """A result (C, H, W) or batch (B, C, H, W) as a PIL picture, one pixel per value, marked as its own file."""
        return self.unique(pixelrnn.to_pil(x, model))

    def unique(self, image):
        """`image` with its own PNG text chunk, so that it becomes its own file.

        Gradio names an output file by its content and rewrites that file when the same content comes again
        (a black row adds nothing to a picture); the rewrite can cut short a download of the same file that
        is still in flight. Pixels are untouched.
        """
        self.count += 1
        image = image.copy()
        image.info["frame"] = f"{self.prefix}-{self.count}"
        return image


def side_by_side(runs):
    """Advance two sampling runs together: the latest step of each (a run with fewer rows keeps its last)."""
    iterators, latest = [iter(r) for r in runs], [None, None]
    while True:
        advanced = False
        for index, iterator in enumerate(iterators):
            step = next(iterator, None)
            if step is not None:
                latest[index], advanced = step, True
        if not advanced:
            return
        yield tuple(latest)
