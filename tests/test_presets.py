"""Schedules: how many evaluations at which sizes, and the scales a run is planned at."""

import pytest

from stylecore import StyleOptions
from stylecore.engine.optimize import coarse_to_fine
from stylecore.protocol import option_table, presets
from stylecore.protocol.errors import BadInput


def test_the_draft_schedule_is_a_quick_preview():
    steps = presets.schedule(presets.PRESETS["draft"], 256)
    assert steps[0][0] == 128 and steps[-1][0] == 256  # coarse to fine, ending at the draft's working size
    assert [e for _, e in steps] == sorted((e for _, e in steps), reverse=True)  # most evaluations where they are cheap
    assert sum(e for _, e in steps) <= 40
    plan = coarse_to_fine.plan((4000, 3000), StyleOptions(preset="draft"), tile_side=1024)
    assert (plan[-1].width, plan[-1].height) == (256, 192) and all(s.grid is None for s in plan)
    small = coarse_to_fine.plan((200, 100), StyleOptions(preset="draft"), tile_side=1024)
    assert (small[-1].width, small[-1].height) == (200, 100)  # never above the layer's own size


def test_best_preset_climbs_to_the_layer_size_in_doublings_above_its_base_size():
    steps = presets.schedule(presets.PRESETS["best"], 6000)
    assert steps[-3:] == [(1500, 10), (3000, 6), (6000, 6)]
    evals = [e for _, e in steps]
    assert evals == sorted(evals, reverse=True)  # coarse scales, where each evaluation is cheap, get most
    assert presets.schedule(presets.PRESETS["balanced"], 1024)[-1] == (1024, 6)
    plan = coarse_to_fine.plan((6000, 4000), StyleOptions(preset="best"), tile_side=1024)
    assert plan[-1].grid is not None and (plan[-1].width, plan[-1].height) == (6000, 4000)  # tiled at the top


def test_thin_layers_are_planned_at_the_smallest_size_the_network_takes():
    plan = coarse_to_fine.plan((3, 2000), StyleOptions(preset="draft"), tile_side=1024)
    assert all(s.width >= 16 and s.height >= 16 for s in plan)
    assert plan[-1].height == 256
    seamless = coarse_to_fine.plan((100, 70), StyleOptions(preset="draft", seamless=True), tile_side=1024)
    assert all(s.width % 16 == 0 and s.height % 16 == 0 for s in seamless)


@pytest.mark.parametrize(
    "options,match",
    [
        (dict(strength=float("nan")), "strength"),
        (dict(style_scale=5), "style_scale"),
        (dict(working_size=63), "working_size"),
        (dict(preset="ultra"), "preset"),
        (dict(pooling="median"), "pooling"),
        (dict(tv_weight=-1), "tv_weight"),
        (dict(seed=2**64), "seed 18446744073709551616 is outside"),
        (dict(seed=True), "seed True is not a whole number"),
        (dict(seamless="false"), "seamless 'false' is not true or false"),
    ],
)
def test_options_are_validated_once_when_made(options, match):
    with pytest.raises(BadInput, match=match):
        StyleOptions(**options)


def test_style_options_are_the_contracts_run_options():
    """The typed fields spell out option_table.RUN_OPTIONS: same names, order and defaults."""
    import dataclasses

    fields = dataclasses.fields(StyleOptions)
    assert [f.name for f in fields] == [o.name for o in option_table.RUN_OPTIONS]
    assert [f.default for f in fields] == [o.default for o in option_table.RUN_OPTIONS]
    assert StyleOptions().strength == 70 == option_table.option("strength").default


def test_the_engine_presets_are_the_ones_every_front_end_offers():
    assert list(presets.PRESETS) == [name for name, _ in presets.PRESETS] == list(option_table.option("preset").choices)


def test_unknown_keywords_are_refused_not_ignored():
    with pytest.raises(BadInput, match="unknown option.s. strenght"):
        StyleOptions.from_keywords({"strenght": 50})
