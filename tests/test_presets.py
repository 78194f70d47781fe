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
    preset = presets.PRESETS["best"]
    steps = presets.schedule(preset, 6000)
    sizes, evals = [s for s, _ in steps], [e for _, e in steps]
    assert preset.min_size <= sizes[0] < 2 * preset.min_size and sizes[-1] == 6000  # coarse to fine, to the layer's size
    above = [s for s in sizes if s > 1.5 * preset.base_size]
    assert above and all(b == 2 * a for a, b in zip([sizes[-len(above) - 1], *above], above))  # doublings up there
    assert evals == sorted(evals, reverse=True)  # coarse scales, where each evaluation is cheap, get most
    assert all(e >= 1 for e in evals)
    plan = coarse_to_fine.plan((6000, 4000), StyleOptions(preset="best"), tile_side=1024)
    assert plan[-1].grid is not None and (plan[-1].width, plan[-1].height) == (6000, 4000)  # tiled at the top


def test_the_finest_scale_gets_enough_evaluations_to_paint_over_the_photo():
    """balanced's last scale is what is seen at 100 %: up to 512 px it gets at least final_evals."""
    balanced = presets.PRESETS["balanced"]
    for side in (320, 512):  # the preview's size and the bench's
        steps = presets.schedule(balanced, side)
        assert steps[-1][0] == side and steps[-1][1] >= balanced.final_evals


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


def test_every_offered_preset_has_a_label_and_a_schedule():
    """What the CLI, the worker and the dialog offer (the option table's choices) is a preset that can run."""
    offered = option_table.option("preset").choices
    assert offered == tuple(presets.PRESETS) and dict(option_table.LABELLED_CHOICES["preset"]).keys() == set(offered)
    labels = [presets.get_preset(name).label for name in offered]
    assert all(labels) and len(set(labels)) == len(labels), "each preset has its own label"
    for name in offered:
        preset = presets.get_preset(name)
        if not preset.feed_forward:
            steps = presets.schedule(preset, 512)
            assert steps[-1][0] == 512 and all(e > 0 for _, e in steps), name


def test_unknown_keywords_are_refused_not_ignored():
    with pytest.raises(BadInput, match="unknown option.s. strenght"):
        StyleOptions.from_keywords({"strenght": 50})
