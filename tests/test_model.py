import inspect
import itertools

import pytest
import torch

import pixelrnn
from conftest import error_of, random_images, settle_batch_norm, tiny
from pixelrnn import distributions
from pixelrnn.options import parameter_count, validate_config

GRID = [
    dict(step=step, cell=cell, mode=mode, bidirectional=bi, batch_norm=bn, row_head=head, values=values,
         channels=3 if values == "8bit" else 1)
    for step, cell, (mode, bi), bn, head, values in itertools.product(
        ("row", "pixel"), ("rnn", "gru", "lstm"),
        (("many-to-many", False), ("many-to-one", False), ("many-to-one", True)),
        (False, True), ("autoregressive", "independent"), ("binary", "8bit"),
    )
]  # fmt: skip
GRID += [  # the MADE head without its direct input-to-output connections
    dict(GRID[i], direct_connections=False) for i, g in enumerate(GRID) if g["row_head"] == "autoregressive" and g["cell"] == "lstm"
]
GRID += [  # trained on shifted views: evaluated and sampled as view 0
    dict(g, view_shift=1) for g in GRID if g["row_head"] == "autoregressive" and g["cell"] == "lstm" and "direct_connections" not in g
]
SPATIAL = [  # the spatial row state (spatial.py): its own option grid
    dict(core="spatial", batch_norm=False, cell=cell, values=values, channels=3 if values == "8bit" else 1, kernel_size=k)
    for cell, values, k in itertools.product(("rnn", "gru", "lstm"), ("binary", "8bit"), (1, 3))
]
GRID += SPATIAL


def _id(config):
    return "-".join(str(v) for v in config.values())


def _value_order_params(model, x):
    """Distribution parameters flattened in the model's autoregressive order: (B, T*D, K)."""
    params = model(x)
    return params.reshape(params.shape[0], -1, params.shape[-1])


@pytest.mark.parametrize("config", GRID, ids=_id)
def test_causal_within_and_across_rows(config):
    model = settle_batch_norm(tiny(window=2, num_layers=2, **config))
    config = model.config
    x = random_images(model, batch=1)
    tokens = model.to_tokens(x)
    size = tokens[0].numel()
    with torch.no_grad():
        base = _value_order_params(model, x)
        for position in range(size):
            changed = tokens.clone().reshape(1, -1)
            top = 1 if config["values"] == "binary" else 255
            changed[0, position] = top - changed[0, position]
            after = _value_order_params(model, model.to_image(changed.reshape(tokens.shape)))
            # nothing at or before the changed value may move
            torch.testing.assert_close(after[:, : position + 1], base[:, : position + 1], rtol=0, atol=1e-6)
            if position < size - model.token_size:  # and the next token does see it
                assert not torch.allclose(after[:, position + 1 :], base[:, position + 1 :])


def _params_before_and_after_flipping_the_first_value_of_row_1(row_head):
    model = settle_batch_norm(tiny(width=5, row_head=row_head))
    x = random_images(model, batch=1)
    flipped = x.clone()
    flipped[0, 0, 1, 0] = 1 - flipped[0, 0, 1, 0]
    with torch.no_grad():
        return model(x)[0, 1], model(flipped)[0, 1]  # row 1's parameters (D, K)


def test_autoregressive_head_sees_earlier_values_of_its_own_row():
    before, after = _params_before_and_after_flipping_the_first_value_of_row_1("autoregressive")
    assert not torch.allclose(after[1:], before[1:])  # same row, later values move


def test_independent_head_ignores_its_own_row():
    before, after = _params_before_and_after_flipping_the_first_value_of_row_1("independent")
    torch.testing.assert_close(after, before, rtol=0, atol=0)


STEPPED = [g for g in GRID if g["batch_norm"] and (g["cell"] == "gru" or (g["cell"] == "lstm" and g["mode"] == "many-to-many"))]
STEPPED += SPATIAL


@pytest.mark.parametrize("config", STEPPED, ids=_id)  # the LSTM steps through its own cell (model._lstm_step)
def test_carried_state_steps_match_the_parallel_pass(config):
    model = settle_batch_norm(tiny(window=3, num_layers=2, **config))
    x = random_images(model, batch=3)
    with torch.no_grad():
        inputs = distributions.normalize(model.to_tokens(x), model.config["values"])
        parallel = model.contexts(inputs)
        tokens = model.to_tokens(x)
        state, previous = None, None
        for t in range(model.num_tokens):
            context, state = model.context_step(previous, state, batch_size=3)
            torch.testing.assert_close(context, parallel[:, t], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(model.token_params(context, tokens[:, t]), model(x)[:, t], rtol=1e-5, atol=1e-5)
            previous = tokens[:, t]


NORMALIZED = [dict(row_head=head, step=step) for head in ("autoregressive", "independent") for step in ("row", "pixel")]
NORMALIZED += [dict(core="spatial", batch_norm=False, cell=cell) for cell in ("gru", "lstm")]


@pytest.mark.parametrize("config", NORMALIZED, ids=_id)
def test_log_prob_is_a_normalized_distribution_over_all_images(config):
    model = settle_batch_norm(tiny(height=2, width=2, **config))
    every_image = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4))).reshape(16, 1, 2, 2)
    with torch.no_grad():
        total = model.log_prob(every_image).sum(dim=(1, 2, 3)).exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-5)


def test_8bit_levels_sum_to_one_and_match_log_prob():
    params = torch.randn(50, 15) * 2
    table = distributions.level_log_probs(params, "8bit")
    assert torch.allclose(table.exp().sum(-1), torch.ones(50), atol=1e-5)
    x = torch.randint(0, 256, (50,)).float()
    direct = distributions.log_prob(params, x, "8bit")
    torch.testing.assert_close(direct, table.gather(-1, x.long()[:, None])[:, 0], atol=2e-3, rtol=1e-3)
    raw = distributions._logistic_mixture_log_prob(params, torch.arange(256.0)).exp().sum(-1)
    assert torch.allclose(raw, torch.ones(50), atol=1e-2)  # the mixture itself is (nearly) normalized


@pytest.mark.parametrize("config", [dict(row_head="autoregressive"), dict(row_head="independent"),
                                    dict(core="spatial", batch_norm=False, cell="lstm")], ids=_id)  # fmt: skip
def test_generate_samples_the_models_distribution(config):
    model = settle_batch_norm(tiny(height=2, width=2, **config))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)  # a sharper, clearly non-uniform distribution
    every_image = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4))).reshape(16, 1, 2, 2)
    with torch.no_grad():
        exact = model.log_prob(every_image).sum(dim=(1, 2, 3)).exp()
    *_, last = pixelrnn.generate(model, n=1024, seed=0)
    draws = [last.image]
    for seed in range(1, 20):
        *_, last = pixelrnn.generate(model, n=1024, seed=seed)
        draws.append(last.image)
    samples = torch.cat(draws)
    codes = (samples.reshape(-1, 4) * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()
    frequency = torch.bincount(codes, minlength=16).float() / len(codes)
    # binomial standard error with n = 20480 is below 0.0035; 5 sigma
    assert (frequency - exact).abs().max().item() < 0.018, (frequency, exact)
    assert exact.max() > 2 * exact.min()


def test_8bit_generate_matches_single_value_distribution():
    model = settle_batch_norm(tiny(height=1, width=1, values="8bit", mixtures=2))
    with torch.no_grad():
        every_level = torch.arange(256.0).reshape(256, 1, 1, 1)
        exact = model.log_prob(every_level).reshape(-1).exp()
    *_, last = pixelrnn.generate(model, n=1024, seed=3)
    samples = torch.cat([last.image] + [list(pixelrnn.generate(model, n=1024, seed=s))[-1].image for s in range(10)])
    frequency = torch.bincount(samples.reshape(-1).long(), minlength=256).float() / samples.numel()
    assert 0.5 * (frequency - exact).abs().sum().item() < 0.06  # total variation


def test_config_is_complete_and_json_ready():
    model = pixelrnn.PixelRNN()
    config = model.config
    assert config["height"] == 28 and config["values"] == "binary" and config["cell"] == "gru"
    assert list(config) == [name for name in inspect.signature(pixelrnn.PixelRNN.__init__).parameters if name != "self"]
    config["height"] = 5
    assert model.config["height"] == 28  # a copy


@pytest.mark.parametrize(
    "bad, words",
    [
        (dict(height=0), "height must be between 1 and 1024"),
        (dict(width=-3), "width must be between 1 and 1024"),
        (dict(height=5000), "height must be between 1 and 1024"),
        (dict(channels=2), "channels must be one of 1, 3, got 2"),
        (dict(channels=True), "channels must be one of 1, 3, got True"),
        (dict(channels=3.0), "channels must be one of 1, 3, got 3.0"),
        (dict(cell="transformer"), "cell must be one of"),
        (dict(hidden_size=100000), "hidden_size must be between"),
        (dict(hidden_size=2.5), "hidden_size must be a whole number"),
        (dict(num_layers=0), "num_layers"),
        (dict(values="16bit"), "values must be one of"),
        (dict(mode="one-to-many"), "mode must be one of"),
        (dict(row_head="made"), "row_head must be one of"),
        (dict(step="column"), "step must be one of"),
        (dict(dropout=1.0), "dropout must be a number in [0, 1)"),
        (dict(batch_norm="yes"), "batch_norm must be true or false"),
        (dict(bidirectional=True), "would not be causal"),
        (dict(core="spatial"), "core='spatial' needs batch_norm=False, got True"),
        (dict(core="spatial", batch_norm=False, mode="many-to-one"), "core='spatial' needs mode='many-to-many'"),
        (dict(core="spatial", batch_norm=False, step="pixel"), "core='spatial' needs step='row'"),
        (dict(core="spatial", batch_norm=False, kernel_size=4), "kernel_size must be odd"),
        (dict(core="cnn"), "core must be one of 'vector', 'spatial'"),
        (dict(width=1024, channels=3, values="8bit", head_size=8192), "weight matrix"),
        (dict(height=10**5000), "height must be between 1 and 1024, got a whole number of 5001 digits"),
        (dict(dropout=[[[[[[[[[0.5]]]]]]]]]), "dropout must be a number in [0, 1), got [[[[[[[...]]]]]]]"),
        (dict(cell="lstm", num_layers=16, bidirectional=True, mode="many-to-one", hidden_size=5792),
         "this configuration has 12,684,211,880 parameters (limit 268,435,456)"),
    ],
)
def test_bad_configs_are_refused_with_a_clear_message(bad, words):
    with pytest.raises(pixelrnn.PixelRNNError, match=None) as info:
        pixelrnn.PixelRNN(**bad)
    assert words in str(info.value)
    assert isinstance(info.value, ValueError)


def test_wrong_batch_shape_is_a_clear_error():
    model = tiny()
    with pytest.raises(pixelrnn.PixelRNNError, match=r"expected a batch of shape \(B, 1, 4, 3\)"):
        model.log_prob(torch.zeros(2, 1, 5, 3))


def test_a_few_steps_of_training_lower_the_nll():
    model = tiny(height=6, width=6, hidden_size=32, head_size=32)
    data = random_images(model, batch=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    first = None
    for _ in range(60):
        loss = -model.log_prob(data).sum(dim=(1, 2, 3)).mean()
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.7 * first


def test_8bit_mode_is_the_most_likely_level():
    params = torch.randn(500, 15) * 2
    expected = distributions.level_log_probs(params, "8bit").argmax(-1).float()
    assert torch.equal(distributions.mode(params, "8bit"), expected)


PARAMETER_GRID = [
    dict(cell=cell, num_layers=layers, mode=mode, bidirectional=bi, batch_norm=bn, row_head=head, step=step,
         values=values, channels=channels, head_layers=head_layers, direct_connections=direct, mixtures=3,
         view_shift=2 if head_layers == 3 else 0)
    for cell, layers, (mode, bi), bn, head, step, (values, channels), head_layers, direct in itertools.product(
        ("rnn", "gru", "lstm"), (1, 3), (("many-to-many", False), ("many-to-one", True)), (False, True),
        ("autoregressive", "independent"), ("row", "pixel"), (("binary", 1), ("8bit", 3)), (1, 3), (True, False),
    )
]  # fmt: skip
PARAMETER_GRID += [
    dict(core="spatial", batch_norm=False, cell=cell, num_layers=layers, values=values, channels=channels, head_layers=head_layers,
         kernel_size=k, mixtures=3)
    for cell, layers, (values, channels), head_layers, k in itertools.product(
        ("rnn", "gru", "lstm"), (1, 2), (("binary", 1), ("8bit", 3)), (1, 5), (1, 3, 5))
]  # fmt: skip


@pytest.mark.parametrize("config", PARAMETER_GRID, ids=_id)
def test_parameter_count_from_the_config_is_exact(config):
    config = dict(config, height=3, width=5, hidden_size=6, head_size=7)
    assert parameter_count(config) == pixelrnn.count_parameters(pixelrnn.PixelRNN(**config))


def test_parameter_count_of_the_defaults_and_a_big_model():
    assert parameter_count({}) == pixelrnn.count_parameters(pixelrnn.PixelRNN())
    big = dict(width=64, channels=3, values="8bit", cell="lstm", num_layers=2, hidden_size=512, head_size=512, head_layers=2)
    assert parameter_count(big) == pixelrnn.count_parameters(pixelrnn.PixelRNN(**big))


def test_a_lower_parameter_limit_is_said_in_the_message():
    count = parameter_count({})
    assert validate_config(pixelrnn.PixelRNN.check_config({}), max_parameters=count) is None
    message = error_of(lambda: pixelrnn.PixelRNN.check_config({}, max_parameters=count - 1))
    assert f"this configuration has {count:,} parameters (limit {count - 1:,})" in message


def test_a_refused_config_builds_no_module(monkeypatch):
    built = []
    monkeypatch.setattr(torch.nn.Module, "__init__", lambda self, *a, **k: built.append(type(self)))
    huge = dict(cell="lstm", num_layers=16, bidirectional=True, mode="many-to-one", hidden_size=5792)
    assert "12,684,211,880 parameters" in error_of(lambda: pixelrnn.PixelRNN(**huge))
    assert built == []


def test_every_option_has_a_rule_a_default_and_a_help_line():
    from pixelrnn import options as model

    assert list(model.HELP) == list(model.OPTIONS)
    for name, option in model.OPTIONS.items():
        assert option.default is not inspect.Parameter.empty, name
        assert name in model.RANGES or name in model.CHOICES or option.annotation in (bool, float, list), name
    model.validate_config(dict(model.DEFAULTS))
    assert "unknown option(s) 'colour'" in error_of(lambda: model.validate_config({**model.DEFAULTS, "colour": 1}))
    assert "missing option(s) height" in error_of(lambda: model.validate_config({k: v for k, v in model.DEFAULTS.items() if k != "height"}))


def _import_graph() -> dict:
    """pixelrnn's modules -> {imported pixelrnn module: whether the import is at module level}, from the source.

    Imports inside functions count too: a lazy import back up is still a knot, only a hidden one.
    """
    import ast
    from pathlib import Path

    package = Path(pixelrnn.__file__).parent
    modules = {path.stem for path in package.glob("*.py")}
    graph = {}
    for name in modules:
        tree = ast.parse((package / f"{name}.py").read_text(encoding="utf-8"))
        top_level = {id(node) for node in tree.body}
        edges = graph[name] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level == 1 or (node.module or "").split(".")[0] == "pixelrnn"):
                base = (node.module or "").removeprefix("pixelrnn").strip(".") if node.level == 0 else (node.module or "")
                targets = [base.split(".")[0]] if base else [a.name for a in node.names if a.name in modules] or ["__init__"]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".")[1] for a in node.names if a.name.startswith("pixelrnn.")]
            else:
                continue
            for target in targets:
                edges[target] = edges.get(target, False) or id(node) in top_level
    return graph


def _cycles(graph: dict) -> list:
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for target in graph.get(node, {}):
            if state.get(target) == "open":
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_pixelrnn_takes_its_options_as_keywords_only_and_refuses_unknown_ones():
    from pixelrnn.options import OPTIONS

    signature = inspect.signature(pixelrnn.PixelRNN.__init__)
    assert list(signature.parameters)[1:] == list(OPTIONS) and all(p.kind is p.KEYWORD_ONLY for p in list(signature.parameters.values())[1:])
    assert "unknown option(s) 'hiden_size'" in error_of(lambda: pixelrnn.PixelRNN(hiden_size=8))


def test_the_package_imports_one_way():
    graph = _import_graph()
    assert _cycles(graph) == []
    assert "model" not in graph["options"] and "model" not in graph["upload"] and "model" not in graph["hub_mixin"]
    assert "model" not in graph["card"] and "model" not in graph["checkpoint"] and "model" not in graph["hub"]
    assert set(graph["hub"]) <= {"errors"}  # transport only


def test_the_library_never_imports_the_apps_stack():
    """Every module of pixelrnn imports without gradio or pandas: they belong to the app beside it."""
    import subprocess
    import sys
    from pathlib import Path

    modules = sorted(f"pixelrnn.{p.stem}" for p in (Path(pixelrnn.__file__).parent).glob("*.py") if p.stem != "__main__")
    code = f"import sys; import {', '.join(modules)}; print(sorted(m for m in ('gradio', 'pandas') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(pixelrnn.__file__).parents[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_head_dropout_drops_head_units_while_training_and_nothing_in_eval_mode():
    torch.manual_seed(0)
    dropped = tiny(head_dropout=0.5, head_layers=2, width=6)
    plain = tiny(head_layers=2, width=6)
    plain.load_state_dict(dropped.state_dict())
    x = random_images(dropped, batch=4)
    dropped.train()
    assert not torch.allclose(dropped(x), dropped(x))  # a new mask each pass
    settle_batch_norm(dropped), plain.load_state_dict(dropped.state_dict()), plain.eval()
    assert torch.equal(dropped(x), plain(x))
    context = torch.randn(4, 8)
    token, params = dropped.sample_token(context, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(params, dropped.token_params(context, token), atol=1e-5)


def test_a_config_without_head_dropout_loads_as_none(tmp_path):
    import json

    model = tiny()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["head_dropout"]  # written before the option existed
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert pixelrnn.PixelRNN.from_pretrained(tmp_path).config["head_dropout"] == 0.0


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_the_fast_step_matches_the_exact_one_to_bfloat16_rounding(cell):
    torch.manual_seed(0)
    model = settle_batch_norm(tiny(cell=cell, num_layers=2, hidden_size=32, head_size=16, height=6, width=5))
    x = random_images(model, batch=4)
    tokens = model.to_tokens(x)
    with torch.no_grad():
        exact_state = fast_state = previous = None
        for t in range(model.num_tokens):
            exact, exact_state = model.context_step(previous, exact_state, batch_size=4)
            fast, fast_state = model.context_step(previous, fast_state, batch_size=4, fast=True)
            assert not torch.equal(fast, exact)  # the products really ran in bfloat16 ...
            torch.testing.assert_close(fast, exact, rtol=0.03, atol=0.03)  # ... and only rounded them
            previous = tokens[:, t]
        with torch.no_grad():  # the bfloat16 weights follow the parameters
            model.rnn.weight_ih_l0.neg_()
        again, _ = model.context_step(None, None, batch_size=4, fast=True)
        torch.testing.assert_close(again, model.context_step(None, None, batch_size=4)[0], rtol=0.03, atol=0.03)


def test_fast_changes_nothing_for_many_to_one_and_draws_nearly_the_same_images():
    model = settle_batch_norm(tiny(mode="many-to-one", window=2))
    assert torch.equal(list(pixelrnn.generate(model, 4, seed=3, fast=True))[-1].image, list(pixelrnn.generate(model, 4, seed=3))[-1].image)
    torch.manual_seed(1)
    model = settle_batch_norm(tiny(cell="lstm", height=8, width=8, hidden_size=32, head_size=32))
    exact, fast = (list(pixelrnn.generate(model, 32, seed=5, fast=f))[-1].image for f in (False, True))
    assert (exact != fast).float().mean() < 0.02  # the same seed: nearly every value drawn alike


def test_input_dropout_drops_the_rnn_input_while_training_and_nothing_in_eval_mode():
    torch.manual_seed(0)
    dropped, plain = tiny(input_dropout=0.5, width=6), tiny(width=6)
    x = random_images(dropped, batch=4)
    inputs = distributions.normalize(dropped.to_tokens(x), "binary")
    dropped.train()
    assert not torch.allclose(dropped.contexts(inputs), dropped.contexts(inputs))  # a new mask each pass
    settle_batch_norm(dropped)
    plain.load_state_dict(dropped.state_dict())
    plain.eval()
    assert torch.equal(dropped(x), plain(x))


@pytest.mark.parametrize("cell, mode", [("rnn", "many-to-many"), ("gru", "many-to-many"), ("lstm", "many-to-many"), ("lstm", "many-to-one")])
def test_recurrent_dropout_drops_hidden_to_hidden_weights_while_training_only(cell, mode):
    torch.manual_seed(0)
    options = dict(cell=cell, mode=mode, window=2, num_layers=2, width=6, batch_norm=False)  # batch norm mixes steps
    dropped = tiny(recurrent_dropout=0.5, **options)
    x = random_images(dropped, batch=4)
    inputs = distributions.normalize(dropped.to_tokens(x), "binary")
    dropped.train()
    torch.manual_seed(1)
    first = dropped.contexts(inputs)
    second = dropped.contexts(inputs)
    torch.manual_seed(1)
    assert torch.equal(dropped.contexts(inputs), first)  # the masks come from torch's generator
    assert not torch.allclose(first[:, 1:], second[:, 1:])  # a new mask each pass
    if mode == "many-to-many":  # its first step starts from a zero state: hidden-to-hidden weights cannot change it
        assert torch.equal(first[:, 0], second[:, 0])
    first.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for name, p in dropped.rnn.named_parameters() if "weight_hh" in name)
    plain = tiny(**options)
    plain.load_state_dict(dropped.state_dict())
    dropped.eval(), plain.eval()
    assert torch.equal(dropped(x), plain(x))


def test_shifted_views_move_each_image_by_its_own_shift_and_view_0_not_at_all():
    from pixelrnn.views import shifted_views, view_count

    x = torch.arange(1.0, 26.0).reshape(1, 1, 5, 5).repeat(25, 1, 1, 1)
    moved = shifted_views(x, torch.arange(25), 2)
    assert view_count(2) == 25 and torch.equal(moved[0], x[0])
    shifts = set()
    for view in range(25):  # every view is x moved by a whole shift of at most 2 rows and 2 columns, zeros behind
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(moved[view, 0], torch.nn.functional.pad(x[0, 0], (2, 2, 2, 2))[2 - dy : 7 - dy, 2 - dx : 7 - dx])]  # fmt: skip
        assert len(found) == 1, view
        shifts.add(found[0])
    assert len(shifts) == 25 and ((0, 0) in shifts)


def test_a_model_with_views_is_evaluated_and_sampled_as_view_0_and_tells_views_apart():
    torch.manual_seed(0)
    model = settle_batch_norm(tiny(view_shift=1, width=6))
    with torch.no_grad():
        model.views.weight.normal_()
    x = random_images(model, batch=4)
    with torch.no_grad():
        as_is = model(x)
        assert torch.equal(as_is, model(x, torch.zeros(4, dtype=torch.long)))
        assert not torch.allclose(as_is, model(x, torch.full((4,), 3)))
        context, _ = model.context_step(None, None, batch_size=4)
        torch.testing.assert_close(model.token_params(context, model.to_tokens(x)[:, 0]), as_is[:, 0])
    for bad in (torch.full((4,), 9), torch.full((4,), -1), torch.zeros(3, dtype=torch.long), torch.zeros(4)):
        assert "views must be 4 whole numbers in 0..8, one per image" in error_of(lambda: model(x, bad))
    plain = tiny(width=6)
    message = error_of(lambda: plain(x, torch.ones(4, dtype=torch.long)))
    assert "not trained on shifted views" in message
    assert torch.equal(plain(x, torch.zeros(4, dtype=torch.long)), plain(x))


def test_sampling_steps_count_each_cores_sequential_work():
    from pixelrnn.options import sampling_steps

    one = dict(height=28, width=28, channels=1, row_head="independent", num_layers=4)
    assert sampling_steps(one) == 28 * 4 + 28  # each layer is a step of its own, then one head pass per row
    assert sampling_steps(dict(one, row_head="autoregressive")) == 28 * 4 + 28 * 28  # one head pass per value
    assert sampling_steps(dict(one, step="pixel", num_layers=1)) == 28 * 28 + 28 * 28
    windowed = dict(one, mode="many-to-one", window=3, bidirectional=True, num_layers=2, channels=3, row_head="autoregressive")
    assert sampling_steps(windowed) == 28 * 3 * 2 * 2 + 28 * 28 * 3
    # The spatial core, measured on a draw: its recurrent steps, and the rows its head draws value by value.
    for channels in (1, 3):
        model = tiny(core="spatial", batch_norm=False, height=4, width=3, channels=channels, num_layers=2, head_layers=2,
                     values="binary" if channels == 1 else "8bit", mixtures=2)  # fmt: skip
        counted = {"rows": 0, "head rows": 0}
        for layer in model.core.layers:
            step = layer.step
            layer.step = lambda *args, step=step: (counted.__setitem__("rows", counted["rows"] + 1), step(*args))[1]
        sample = model.head.sample
        model.head.sample = lambda *args: (counted.__setitem__("head rows", counted["head rows"] + 1), sample(*args))[1]
        pixelrnn.sample.last(pixelrnn.generate(model, n=2, seed=0))
        steps = sampling_steps(model.config)
        assert counted["rows"] == 4 * 2 and counted["head rows"] == 4  # one recurrent step per row and layer
        assert steps == counted["rows"] + counted["head rows"] * 3 * (1 + 2) + 4 * 3 * channels  # per column: 1 + head_layers layers; per value: 1
