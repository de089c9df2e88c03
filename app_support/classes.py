"""The class pickers of a class-conditional model, and the words that say which class each image was drawn as.

A model's class names come from its config.json: for a Hub model, a stranger's text. They are shown as plain
text only (a Dropdown's choices and a Textbox, which the page never renders as markup), cut to NAME_CHARS,
without control or format characters (no line breaks, no right-to-left overrides), and made unique: a name
that repeats another or is one of the picker's own words ("any", "each class") gets its class number.

A picker's value is the class's shown name, "any" (labels=None: the model draws each image's class) or, in Draw
and complete, "each class" (one completion per class). The value a visitor sends is checked here against the
model in use (`chosen`), not by Gradio: Gradio's own message would quote the model's names as HTML.
"""
import math
import unicodedata

import gradio as gr
import pandas as pd

import pixelrnn

from . import limits

ANY, EACH = "any", "each class"
NAME_CHARS = 64  # a name is cut here on the page (the library allows 64 characters)
LOSS_HEADER = "sampling loss (nats per value)"


class ClassPicker(gr.Dropdown):
    """gr.Dropdown that hands the handler what the visitor sent, unchecked: `chosen` checks it against the model
    in use and says what is wrong in plain words (the choices change with the model, per session)."""

    is_template = True  # rendered by the frontend as a plain gr.Dropdown

    def preprocess(self, payload):
        return payload


class Caption(gr.Textbox):
    """A line of the page only: left out of the API (gradio_client gets the endpoint's outputs as before)."""

    is_template = True

    @property
    def skip_api(self):
        return True


def picker(label: str, elem_id: str, info: str | None = None) -> ClassPicker:
    """A class picker, hidden until a class-conditional model is in use (`updates`)."""
    return ClassPicker([ANY], value=ANY, label=label, info=info, visible=False, elem_id=elem_id, filterable=False)


def caption(label: str, elem_id: str) -> Caption:
    return Caption(label=label, interactive=False, visible=False, lines=1, max_lines=8, elem_id=elem_id)


def count(model) -> int:
    """How many classes `model` has (0: unconditional)."""
    return int(model.config.get("classes") or 0) if model is not None else 0


def names(model) -> list[str]:
    """Each class's name as the page shows it and the pickers take it: one per class, unique, plain."""
    given, shown, taken = list(model.config.get("class_names") or []), [], {ANY, EACH}
    for index in range(count(model)):
        name = _printable(given[index] if index < len(given) else "") or f"class {index}"
        unique, extra = name, 1
        while unique in taken:
            unique = f"{name} (class {index})" if extra == 1 else f"{name} (class {index}, {extra})"
            extra += 1
        taken.add(unique)
        shown.append(unique)
    return shown


def _printable(name) -> str:
    """`name` without control, format or unassigned characters (each becomes a space), cut to NAME_CHARS."""
    text = "".join(" " if unicodedata.category(c).startswith(("C", "Z")) else c for c in str(name))
    text = " ".join(text.split())
    return text if len(text) <= NAME_CHARS else text[:NAME_CHARS].rstrip() + "..."


def updates(model) -> tuple:
    """The pickers and captions for `model` (None: no model), in app.py's order: the Reconstruct tab's picker,
    Draw and complete's picker, Generate's picker, Draw and complete's caption, Generate's caption."""
    shown, k = (names(model), count(model)) if model is not None else ([], 0)
    visible = k > 0
    each = [EACH] if 0 < k <= limits.MAX_COMPLETIONS else []
    draw_info = (f"{EACH}: one completion per class, side by side (the completions slider is not used)" if each or not k else
                 f"this model has {k:,} classes: {EACH} needs at most {limits.MAX_COMPLETIONS} (the largest grid here)")  # fmt: skip
    return (
        gr.update(choices=[ANY, *shown], value=ANY, visible=visible),
        gr.update(choices=[ANY, *each, *shown], value=ANY, visible=visible, info=draw_info),
        gr.update(choices=[ANY, *shown], value=ANY, visible=visible),
        gr.update(value="", visible=visible),
        gr.update(value="", visible=visible),
    )


def chosen(value, model, each: bool = False):
    """The `labels` of the library for a picker's value: None ("any"), a class index, or (`each`, in Draw and
    complete) one index per class. Anything else, or a class `model` does not have, is a PixelRNNError."""
    if value is None or value == ANY:
        return None
    shown, k = names(model), count(model)
    if not isinstance(value, str):
        raise pixelrnn.PixelRNNError(f"a class is a name from the class list; {_quoted(value)} is not")
    if not k:
        raise pixelrnn.PixelRNNError(f"this model has no classes: leave the class at {ANY!r}, not {_quoted(value)}")
    if value == EACH and each:
        if k > limits.MAX_COMPLETIONS:
            raise pixelrnn.PixelRNNError(
                f"this model has {k:,} classes and a grid here holds at most {limits.MAX_COMPLETIONS} completions: "
                f"choose one class, or {ANY!r}"
            )
        return list(range(k))
    if value in shown:
        return shown.index(value)
    listed = ", ".join(repr(name) for name in shown[:10]) + (f" and {k - 10:,} more" if k > 10 else "")
    choices = f"{ANY!r}, {EACH!r} or one of {listed}" if each else f"{ANY!r} or one of {listed}"
    raise pixelrnn.PixelRNNError(f"{_quoted(value)} is not a class of this model: choose {choices}")


def _quoted(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def said(labels, model, asked=None) -> str:
    """Which class each image of a grid was drawn as (a Step's `labels`), grid row by grid row, as plain text.

    `asked` is what `chosen` gave: one class says it once; "any" and "each class" name every image.
    """
    if labels is None or not count(model):
        return ""
    shown = names(model)
    drawn = [shown[int(label)] for label in labels]
    if len(drawn) == 1 or isinstance(asked, int) and len(set(drawn)) == 1:
        return f"All {len(drawn)} drawn as {drawn[0]}." if len(drawn) > 1 else f"Drawn as {drawn[0]}."
    columns = math.ceil(math.sqrt(len(drawn)))  # as pixelrnn.to_pil lays out a grid
    rows = [drawn[start : start + columns] for start in range(0, len(drawn), columns)]
    return "\n".join(f"row {number}: {', '.join(row)}" for number, row in enumerate(rows, 1))


def completion_table(losses, labels, model) -> pd.DataFrame:
    """Draw and complete's table: each completion's number, its class (class-conditional models) and loss."""
    table = {"completion": list(range(1, len(losses) + 1))}
    if labels is not None and count(model):
        shown = names(model)
        table["class"] = [shown[int(label)] for label in labels]
    table[LOSS_HEADER] = [round(float(loss), 4) for loss in losses]
    return pd.DataFrame(table)
