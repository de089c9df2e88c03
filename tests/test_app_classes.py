"""The app's class pickers (app_support/classes.py) on their own: choices, checks of what a visitor sends, captions.

Models here are stand-ins with a config (the pickers read nothing else); tests/test_app.py drives the pickers
through the running app on a real class-conditional checkpoint.
"""
from types import SimpleNamespace

import pytest

import pixelrnn
from app_support import classes, limits
from app_support.classes import ANY, EACH
from conftest import error_of


def model(names=(), classes_=None):
    count = len(names) if classes_ is None else classes_
    return SimpleNamespace(config={"classes": count, "class_names": list(names)})


UNCONDITIONAL = model()
DIGITS = model([str(i) for i in range(10)])


def test_an_unconditional_model_hides_every_picker_and_caption():
    for update in classes.updates(UNCONDITIONAL) + classes.updates(None):
        assert update["visible"] is False
    assert classes.chosen(ANY, UNCONDITIONAL) is None and classes.chosen(None, UNCONDITIONAL) is None
    assert "has no classes" in error_of(lambda: classes.chosen("3", UNCONDITIONAL))
    assert classes.said(None, UNCONDITIONAL) == ""


def test_a_class_conditional_model_offers_any_then_its_names_and_draw_and_complete_each_class():
    restore, draw, generate, draw_caption, generate_caption = classes.updates(DIGITS)
    names = [str(i) for i in range(10)]
    assert restore["choices"] == generate["choices"] == [ANY, *names]
    assert draw["choices"] == [ANY, EACH, *names]
    assert all(u["value"] == ANY and u["visible"] is True for u in (restore, draw, generate))
    assert draw_caption == generate_caption == {"__type__": "update", "value": "", "visible": True}


def test_a_picked_value_becomes_the_librarys_labels():
    assert classes.chosen(ANY, DIGITS) is None
    assert classes.chosen("7", DIGITS) == 7
    assert classes.chosen(EACH, DIGITS, each=True) == list(range(10))


@pytest.mark.parametrize("value, words", [
    ("11", "'11' is not a class of this model: choose 'any' or one of '0', '1'"),
    (EACH, "'each class' is not a class of this model"),  # Generate and Reconstruct have no "each class"
    (7, "is a name from the class list"),
    (["1", "2"], "is a name from the class list"),
    ("x" * 500, "'xxxx"),
])  # fmt: skip
def test_a_value_that_is_not_a_choice_is_a_clear_message(value, words):
    message = error_of(lambda: classes.chosen(value, DIGITS))
    assert message is not None and words in message
    assert len(message) < 300  # a long value is cut, not quoted whole


def test_a_model_with_more_classes_than_a_grid_holds_says_so_for_each_class():
    many = model([f"c{i}" for i in range(limits.MAX_COMPLETIONS + 1)])
    draw = classes.updates(many)[1]
    assert EACH not in draw["choices"] and f"needs at most {limits.MAX_COMPLETIONS}" in draw["info"]
    message = error_of(lambda: classes.chosen(EACH, many, each=True))
    assert f"this model has {limits.MAX_COMPLETIONS + 1} classes" in message and f"at most {limits.MAX_COMPLETIONS} completions" in message
    assert classes.chosen("c16", many) == 16
    exactly = model([f"c{i}" for i in range(limits.MAX_COMPLETIONS)])
    assert classes.chosen(EACH, exactly, each=True) == list(range(limits.MAX_COMPLETIONS))


def test_names_are_plain_unique_and_never_the_pickers_own_words():
    hostile = model(["any", "each class", "<img src=x onerror=alert(1)>", "a\u202eb", " spaced  out ", "n" * 80, "dup", "dup"])
    shown = classes.names(hostile)
    assert shown[:2] == ["any (class 0)", "each class (class 1)"]
    assert shown[2] == "<img src=x onerror=alert(1)>"  # plain text in a Dropdown and a Textbox: shown as it is
    assert shown[3] == "a b" and shown[4] == "spaced out"  # no right-to-left override, no stray spaces
    assert shown[5] == "n" * classes.NAME_CHARS + "..."
    assert shown[6:] == ["dup", "dup (class 7)"]
    assert len(set(shown)) == len(shown)
    assert classes.chosen("any", hostile) is None and classes.chosen("any (class 0)", hostile) == 0
    assert classes.chosen("dup (class 7)", hostile) == 7
    assert classes.names(model([], classes_=3)) == ["class 0", "class 1", "class 2"]  # no names (the library gives '0', '1', ...)


def test_captions_name_each_images_class_by_rows_of_the_grid():
    abc = model(["a", "b", "c"])
    assert classes.said([0, 2, 1, 1, 0], abc) == "row 1: a, c, b\nrow 2: b, a"  # 5 images: 3 columns, as to_pil lays them out
    assert classes.said([0, 1, 2], abc, asked=[0, 1, 2]) == "row 1: a, b\nrow 2: c"
    assert classes.said([1, 1, 1, 1], abc, asked=1) == "All 4 drawn as b."
    assert classes.said([2], abc) == "Drawn as c."
    assert classes.said([0, 1], UNCONDITIONAL) == ""


def test_the_completion_table_names_the_class_of_a_class_conditional_models_completions():
    abc = model(["a", "b", "c"])
    table = classes.completion_table([0.51234, 0.2], [2, 0], abc)
    assert list(table.columns) == ["completion", "class", classes.LOSS_HEADER]
    assert table.values.tolist() == [[1, "c", 0.5123], [2, "a", 0.2]]
    plain = classes.completion_table([0.5], None, UNCONDITIONAL)
    assert list(plain.columns) == ["completion", classes.LOSS_HEADER]


def test_messages_are_library_errors_the_app_shows_escaped():
    with pytest.raises(pixelrnn.PixelRNNError):
        classes.chosen("<b>x</b>", DIGITS)
