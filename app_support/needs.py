"""The app's requirements, checked before any of them is imported: a Python without them gets one line saying
what is missing and the pip command that installs it, not a ModuleNotFoundError."""
import importlib.util
import shlex
import sys

NEEDED = {"gradio": "gradio", "torch": "torch", "PIL": "pillow", "numpy": "numpy", "safetensors": "safetensors",
          "huggingface_hub": "huggingface_hub", "yaml": "pyyaml", "tqdm": "tqdm", "sklearn": "scikit-learn"}  # fmt: skip


def exit_if_missing(requirements) -> None:
    missing = [package for module, package in NEEDED.items() if importlib.util.find_spec(module) is None]
    if missing:
        sys.exit(f"app.py needs {', '.join(missing)}, missing from this Python ({sys.executable}): install the requirements with "
                 f"{shlex.quote(sys.executable)} -m pip install -r {shlex.quote(str(requirements))}")  # fmt: skip
