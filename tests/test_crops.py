import json

import numpy as np
import pytest

from gamma_detect.crops import CropPolicy, ImageTooSmall, resize

POLICY = CropPolicy()
STAGED = CropPolicy(coarse_grid=0, refine_bands=("likely_real", "uncertain", "likely_ai"))
BANDS = [{"name": "real", "min": 0.0, "max": 0.2}, {"name": "likely_real", "min": 0.2, "max": 0.4},
         {"name": "uncertain", "min": 0.4, "max": 0.6}, {"name": "likely_ai", "min": 0.6, "max": 0.82},
         {"name": "ai", "min": 0.82, "max": 1.000001}]


@pytest.mark.parametrize("policy", [POLICY, STAGED], ids=["grid", "staged"])
@pytest.mark.parametrize("h,w", [(224, 224), (300, 500), (900, 1600), (3000, 2000), (100, 180), (64, 64)])
def test_views_are_input_sized_and_cover_the_image(policy, h, w):
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    views, plan = policy.views(image)
    assert views.shape[1:] == (224, 224, 3) and views.dtype == np.uint8
    assert len(views) == plan.views <= policy.max_grid ** 2 + 1
    for n in {plan.first_views, plan.views}:   # stage 0 alone, or every stage
        stitched = policy.stitch(np.ones((n, 224, 224), np.float32), plan)
        assert stitched.shape == plan.working == policy.working_size(h, w)
        np.testing.assert_allclose(stitched, 1.0, atol=1e-5)


def test_one_stage_policy_cuts_the_same_views_as_before():
    """Grid crops first, the global view last: what every released manifest was calibrated with."""
    image = np.random.default_rng(1).integers(0, 255, (900, 1600, 3), dtype=np.uint8)
    views, plan = POLICY.views(image)
    assert plan.first is None and plan.first_views == plan.views == 10
    scaled = resize(image, 1195, 672)
    np.testing.assert_array_equal(views[0], scaled[:224, :224])
    np.testing.assert_array_equal(views[8], scaled[448:, 971:])
    np.testing.assert_array_equal(views[9], resize(image[:, 350:1250], 224, 224))


def test_staged_views_split_into_stages_in_stitching_order():
    image = np.random.default_rng(2).integers(0, 255, (900, 1600, 3), dtype=np.uint8)
    policy = CropPolicy(coarse_grid=2, refine_bands=("uncertain",))
    tiles = policy.tile(image)
    first, rest, every = tiles.views(0), tiles.views(1), tiles.views()
    # the 2x2 grid's corners are the 3x3 grid's corners: stage 1 adds only the five crops between them
    assert len(first) == 5 and len(rest) == 5 and len(every) == tiles.plan.views == 10
    np.testing.assert_array_equal(np.concatenate([first, rest]), every)
    np.testing.assert_array_equal(first[-1], POLICY.views(image)[0][-1])   # the same global view


def test_global_only_first_stage():
    tiles = STAGED.tile(np.zeros((300, 500, 3), np.uint8))
    assert len(tiles.views(0)) == 1 and tiles.plan.first == 0
    assert len(tiles.views(1)) == tiles.plan.views - 1 == 6


def test_refines_only_inside_the_named_bands():
    assert [STAGED.refines(p, BANDS) for p in (0.05, 0.3, 0.5, 0.7, 0.9)] == [False, True, True, True, False]
    assert not POLICY.refines(0.5, BANDS)   # one stage: everything already ran


def test_manifest_roundtrip_and_older_manifests():
    for policy in (POLICY, STAGED, CropPolicy(coarse_grid=1, work_pixels=400_000)):
        assert CropPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy
    older = {"name": "grid+global", "combine": "mean_logit", "input_size": 224, "max_grid": 3, "work_side": 672,
             "min_scale": 0.5, "min_side": 64, "combine_rule": {"name": "mean_logit"}}
    assert CropPolicy.from_dict(older) == POLICY and not POLICY.staged
    assert STAGED.to_dict()["name"] == "staged"


def test_pixel_budget_caps_the_working_image():
    budgeted = CropPolicy(work_pixels=300_000)
    h, w = budgeted.working_size(2000, 3000)
    assert h * w <= 300_000 * 1.01 and h / w == pytest.approx(2 / 3, abs=0.01)
    assert budgeted.working_size(100, 6000)[0] == 224     # never below the input size
    assert budgeted.working_size(400, 500) == (400, 500)  # under budget: untouched


def test_reduced_array_keeps_the_native_working_resolution():
    """A decoder may hand over the image already reduced (JPEG DCT scaling): same working size and crops."""
    native = np.random.default_rng(3).integers(0, 255, (2000, 3000, 3), dtype=np.uint8)
    reduced = resize(native, 1500, 1000)
    full_plan = POLICY.plan(2000, 3000)
    plan = POLICY.plan(1000, 1500, native=(2000, 3000))
    assert plan.working == full_plan.working == (1000, 1500) and plan.boxes == full_plan.boxes
    views, plan = POLICY.views(reduced, native=(2000, 3000))
    assert POLICY.stitch(np.ones((len(views), 28, 28), np.float32), plan).shape == (1000, 1500)
    assert POLICY.plan(1000, 1500).working == (672, 1008)   # without `native` the policy would shrink it again


def test_stitch_puts_each_view_back_in_place():
    image = np.zeros((448, 448, 3), np.uint8)
    views, plan = POLICY.views(image)
    maps = np.zeros((len(views), 224, 224), np.float32)
    maps[plan.boxes.index((0, 0))] = 1.0
    stitched = POLICY.stitch(maps, plan)
    assert stitched[:180, :180].min() > 0.97          # the view's own interior (the others' weights have faded)
    assert stitched[260:, 260:].max() < 0.01          # the far corner belongs to other views


@pytest.mark.parametrize("extra", [(), (5,)])
def test_stride_8_maps_are_upsampled_into_place(extra):
    """A network's 28x28 map lands where its view came from, upsampled bilinearly (one cell = 8 px)."""
    views, plan = POLICY.views(np.zeros((448, 448, 3), np.uint8))
    maps = np.zeros((len(views), 28, 28, *extra), np.float32)
    maps[plan.boxes.index((0, 0)), :14] = 1.0   # the top half of the top-left view
    stitched = POLICY.stitch(maps, plan)
    assert stitched.shape == (448, 448, *extra)
    assert stitched[:100, :150].min() > 0.97                    # inside the view: its map
    assert stitched[120:, :].max() < 0.03                       # past the bilinear ramp: nothing
    assert 0.2 < stitched[112, 100].mean() < 0.8                # the ramp itself: one 8-px cell wide


def _views_of_a_field(policy, shape, offsets):
    """Per-view maps cut from one smooth field (a blob crossing every crop border), each view shifted by its
    own offset: views that disagree, as a network's neighbouring crops do."""
    h, w = shape
    plan = policy.plan(h, w)
    wh, ww = plan.working
    yy, xx = np.mgrid[0:wh, 0:ww].astype(np.float32)
    field = np.exp(-(((yy - wh / 2) / (wh / 3)) ** 2 + ((xx - ww / 2) / (ww / 3)) ** 2))
    s = policy.input_size
    first = len(plan.boxes[:plan.first])
    top, left, side = (round(v * plan.scale) for v in plan.global_box)
    grid = [field[y:y + s, x:x + s] for y, x in plan.boxes]
    whole = resize(field[top:top + side, left:left + side], s, s)
    maps = np.stack(grid[:first] + [whole] + grid[first:])
    return plan, field, maps + np.asarray(offsets, np.float32)[:len(maps), None, None]


@pytest.mark.parametrize("shape", [(448, 448), (600, 900), (672, 1195), (672, 1600)])
def test_stitched_map_has_no_step_at_crop_borders(shape):
    rng = np.random.default_rng(4)
    offsets = rng.uniform(-0.3, 0.3, 10)
    plan, field, maps = _views_of_a_field(POLICY, shape, offsets)
    stitched = POLICY.stitch(maps, plan)
    step = max(np.abs(np.diff(stitched, axis=0)).max(), np.abs(np.diff(stitched, axis=1)).max())
    field_step = max(np.abs(np.diff(field, axis=0)).max(), np.abs(np.diff(field, axis=1)).max())
    spread = offsets.max() - offsets.min()
    # A hard stitch jumps by the offsets' difference at a border; feathering spreads it over the feather width.
    assert step < field_step + 2 * spread / POLICY.feather
    consistent = POLICY.stitch(maps - np.asarray(offsets, np.float32)[:len(maps), None, None], plan)
    # Views that agree give back the field wherever a view saw it: the global view's square and the crops'
    # cores (within the feather width of a crop's edge the global view's map, carried outward, takes over).
    seen = np.zeros(field.shape, bool)
    top, left, side = (round(v * plan.scale) for v in plan.global_box)
    seen[top:top + side, left:left + side] = True
    f = POLICY.feather
    for y, x in plan.boxes:
        seen[y + f:y + 224 - f, x + f:x + 224 - f] = True
    np.testing.assert_allclose(consistent[seen], field[seen], atol=0.03)


def test_stitch_of_a_large_image_stays_at_working_resolution():
    """A 24 MP image's map is stitched at its working size (halved: what the views saw), not at 4000x6000:
    the share of suspect pixels is the same at either size."""
    plan, field, maps = _views_of_a_field(POLICY, (4000, 6000), np.zeros(10))
    stitched = POLICY.stitch(maps, plan)
    assert stitched.shape == plan.working == (2000, 3000)
    full = resize(stitched, 6000, 4000)
    assert abs(float((stitched > 0.5).mean()) - float((full > 0.5).mean())) < 0.002


def test_stitch_capped_at_max_side_stops_at_working_resolution():
    views, plan = POLICY.views(np.zeros((900, 1600, 3), np.uint8))
    small = POLICY.stitch(np.ones((len(views), 28, 28, 5), np.float32), plan, max_side=512)
    assert small.shape == (288, 512, 5)
    np.testing.assert_allclose(small, 1.0, atol=1e-5)


def test_scale_rules():
    assert POLICY.scale_for(500, 600) == 1.0
    assert POLICY.scale_for(2000, 3000) == 0.5          # never below min_scale
    assert POLICY.scale_for(1000, 1000) == pytest.approx(0.672)
    assert POLICY.scale_for(112, 300) == pytest.approx(2.0)


def test_too_small():
    with pytest.raises(ImageTooSmall, match="at least 64"):
        POLICY.plan(63, 500)
    with pytest.raises(ImageTooSmall, match="at least 64"):
        POLICY.plan(63, 500, native=(630, 5000))   # a decoder must not reduce an image below the limit


@pytest.mark.parametrize("classes", [3, 5, 9])
def test_stitch_of_many_channels_is_each_channel_stitched(classes):
    """OpenCV resizes at most 4 channels at a time: maps of any class count stitch as each class alone would."""
    rng = np.random.default_rng(5)
    views, plan = STAGED.views(np.zeros((600, 900, 3), np.uint8))
    maps = rng.random((len(views), 28, 28, classes), dtype=np.float32)
    together = STAGED.stitch(maps, plan, max_side=128)
    alone = np.stack([STAGED.stitch(np.ascontiguousarray(maps[..., c]), plan, max_side=128) for c in range(classes)], -1)
    assert together.shape == (*alone.shape[:2], classes)
    np.testing.assert_allclose(together, alone, atol=1e-6)
