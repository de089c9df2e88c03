"""Placeholder app: loads the default checkpoint and generates. The full app replaces it."""
from pathlib import Path

import gradio as gr

import pixelrnn

DEFAULT_CHECKPOINT = Path(__file__).parent / "weights" / "binarized-mnist"


def load_default():
    try:
        return pixelrnn.PixelRNN.from_pretrained(DEFAULT_CHECKPOINT), ""
    except pixelrnn.PixelRNNError as error:
        return None, f"Cannot load the default checkpoint: {error}"


MODEL, LOAD_ERROR = load_default()


def generate(n, seed):
    if MODEL is None:
        raise gr.Error(LOAD_ERROR)
    for step in pixelrnn.generate(MODEL, n=int(n), seed=int(seed)):
        yield pixelrnn.to_pil(step.image, MODEL, scale=4)


with gr.Blocks(title="pixelrnn") as demo:
    gr.Markdown("# pixelrnn: images generated row by row" + (f"\n\n**{LOAD_ERROR}**" if LOAD_ERROR else ""))
    with gr.Row():
        n = gr.Slider(1, 64, value=16, step=1, label="images")
        seed = gr.Number(0, precision=0, label="seed")
    button = gr.Button("Generate", variant="primary")
    output = gr.Image(label="samples", format="png")
    button.click(generate, [n, seed], output, api_name="generate")

if __name__ == "__main__":
    demo.launch()
