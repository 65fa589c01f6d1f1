import numpy as np
import pytest

from gamma_detect.crops import CropPolicy, ImageTooSmall

POLICY = CropPolicy()


@pytest.mark.parametrize("h,w", [(224, 224), (300, 500), (900, 1600), (3000, 2000), (100, 180), (64, 64)])
def test_views_are_input_sized_and_cover_the_image(h, w):
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    views, plan = POLICY.views(image)
    assert views.shape[1:] == (224, 224, 3) and views.dtype == np.uint8
    assert len(views) == plan.views <= POLICY.max_grid ** 2 + 1
    stitched = POLICY.stitch(np.ones((len(views), 224, 224), np.float32), plan)
    assert stitched.shape == (h, w)
    np.testing.assert_allclose(stitched, 1.0, atol=1e-5)


def test_stitch_puts_each_view_back_in_place():
    image = np.zeros((448, 448, 3), np.uint8)
    views, plan = POLICY.views(image)
    maps = np.zeros((len(views), 224, 224), np.float32)
    top_left = plan.boxes.index((0, 0))
    maps[top_left] = 1.0
    stitched = POLICY.stitch(maps, plan)
    assert stitched[:224, :224].mean() == pytest.approx(1.0)
    assert stitched[224:, 224:].max() == 0.0


@pytest.mark.parametrize("extra", [(), (5,)])
def test_stride_8_maps_are_upsampled_into_place(extra):
    """A network's 28x28 map lands where its view came from, upsampled bilinearly (one cell = 8 px)."""
    views, plan = POLICY.views(np.zeros((448, 448, 3), np.uint8))
    maps = np.zeros((len(views), 28, 28, *extra), np.float32)
    maps[plan.boxes.index((0, 0)), :14] = 1.0   # the top half of the top-left view
    stitched = POLICY.stitch(maps, plan)
    assert stitched.shape == (448, 448, *extra)
    assert stitched[:108, :224].min() == pytest.approx(1.0)     # a few cells inside the edge: exactly 1
    assert stitched[116:, :].max() == 0.0                       # past the bilinear ramp: nothing
    assert 0.0 < stitched[112, 100].mean() < 1.0                # the ramp itself: one 8-px cell wide


def test_multichannel_maps():
    views, plan = POLICY.views(np.zeros((300, 400, 3), np.uint8))
    out = POLICY.stitch(np.ones((len(views), 224, 224, 5), np.float32), plan)
    assert out.shape == (300, 400, 5)


def test_scale_rules():
    assert POLICY.scale_for(500, 600) == 1.0
    assert POLICY.scale_for(2000, 3000) == 0.5          # never below min_scale
    assert POLICY.scale_for(1000, 1000) == pytest.approx(0.672)
    assert POLICY.scale_for(112, 300) == pytest.approx(2.0)


def test_too_small_and_roundtrip():
    with pytest.raises(ImageTooSmall, match="at least 64"):
        POLICY.plan(63, 500)
    assert CropPolicy.from_dict(POLICY.to_dict()) == POLICY
