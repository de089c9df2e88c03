"""Sampling loops scripted by TorchScript, once per process: each of their operations is small, so Python's
own cost per operation would be most of the time. Where a loop cannot be scripted it runs in Python, with
one warning that says so and what it costs."""
import warnings

import torch

_scripted = {}  # function -> what runs in its place


def scripted(function, cost: str):
    """`function` compiled by torch.jit.script, or `function` itself (and one RuntimeWarning naming `cost`)."""
    if function not in _scripted:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated, not gone
                _scripted[function] = torch.jit.script(function)
        except Exception as error:  # noqa: BLE001 - any failure to script leaves the same loop, run by Python
            warnings.warn(f"pixelrnn: the sampling loop {function.__name__} could not be scripted ({type(error).__name__}: {error}); "
                          f"sampling runs it in Python, {cost}", RuntimeWarning, stacklevel=3)  # fmt: skip
            _scripted[function] = function
    return _scripted[function]
