"""Errors a visitor sees: PixelRNNError messages as they are, anything unexpected as a short generic line."""
import functools
import inspect
import logging

import gradio as gr

import pixelrnn

from .text import plain_html

log = logging.getLogger("pixelrnn.app")


def friendly_errors(handler):
    """Let a handler's PixelRNNError reach the page as its message; anything else as a short generic one.

    Unexpected errors are logged here with their traceback; the page never sees a stack trace. Gradio shows
    a message as HTML, and a message may quote a visitor's text (a repo id, a file name): it is escaped.
    """

    def translate(error):
        if isinstance(error, gr.Error):
            return error
        if isinstance(error, pixelrnn.PixelRNNError):
            return gr.Error(plain_html(error), print_exception=False)
        log.exception("unexpected error in %s", handler.__name__)
        return gr.Error(
            f"Something went wrong on the server ({type(error).__name__}); it has been logged. "
            "Try again, or with other settings.",
            print_exception=False,
        )

    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def stream(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - every error becomes a message
                raise translate(error) from None

        return stream

    @functools.wraps(handler)
    def call(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - every error becomes a message
            raise translate(error) from None

    return call


def scrub(message: str, secret: str | None) -> str:
    """A message with a secret (the Hub token) blanked out, in case a library quotes it."""
    return message.replace(secret, "***") if secret else message


def gpu(duration: int | None = None):
    """`spaces.GPU` on Hugging Face ZeroGPU hardware (the package is there), a no-op decorator elsewhere."""
    try:
        import spaces
    except ImportError:
        return lambda handler: handler
    return spaces.GPU(duration=duration) if duration else spaces.GPU
