"""Every Python block of the README runs as printed, in a fresh process, from a folder outside the project
(the app's client block from the project folder, as the README says: it uploads one of the examples).

`import pixelrnn` must work there by the README's set-up command alone (requirements.txt installs the
package). The Hub block loads from the local Hub stand-in, the app's client block talks to the test server:
only the address differs from what a reader types.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from app_harness import served
from hub_server import FakeHub

import pixelrnn

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"^```python\n(.*?)^```$", (ROOT / "README.md").read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)


def checkpoint_files(folder: Path) -> dict:
    pixelrnn.PixelRNN(height=28, width=28, hidden_size=16, head_size=16).save_pretrained(folder)
    return {name: (folder / name).read_bytes() for name in ("config.json", "model.safetensors", "README.md")}


@pytest.mark.parametrize("block", BLOCKS, ids=[block.splitlines()[0][:40] for block in BLOCKS])
def test_the_readme_block_runs_as_printed(block, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    code, hub, folder = block, None, tmp_path
    if "Client(" in block:  # the app's client, run where the README says: the project folder (its examples/)
        _, url, _ = served()
        code, folder = block.replace("http://127.0.0.1:7860/", url), ROOT
    repos = re.findall(r'from_pretrained\("([\w.-]+/[\w.-]+)"', block)
    if repos:
        hub = FakeHub().start()
        for repo in repos:
            hub.add_repo(repo, checkpoint_files(tmp_path / "checkpoint"))
        env.update(HF_ENDPOINT=hub.endpoint)
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    finally:
        if hub is not None:
            hub.stop()
    assert done.returncode == 0, done.stderr[-3000:]
