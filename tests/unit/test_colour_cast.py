"""Training's colour cast (train/pipeline.py cast_colours, `colour_cast`): each photo's white balance shifted as a
camera shifts it under a warmer or cooler light, red and blue in opposite directions, bounded by the strength, drawn
per photo and repeated by a seeded run; the training pipeline applies it only when asked."""

from __future__ import annotations

import numpy as np

from leafdoc.train.config import TrainConfig
from leafdoc.train.pipeline import cast_colours, make_dataset


def grey_batch(n: int = 400) -> np.ndarray:
    return np.full((n, 8, 8, 3), 120, dtype=np.uint8)


def test_red_and_blue_move_apart_within_the_strength_and_green_by_a_third():
    out = cast_colours(grey_batch(), 0.2, np.random.default_rng(0)).astype(float)
    gains = out[:, 0, 0, :] / 120
    r, g, b = gains.T
    assert np.all(np.abs(r - 1) <= 0.2 + 1 / 120) and np.all(np.abs(b - 1) <= 0.2 + 1 / 120)
    assert np.all(np.abs(g - 1) <= 0.2 / 3 + 1 / 120)
    np.testing.assert_allclose(r - 1, -(b - 1), atol=1.5 / 120)  # warmer: redder and less blue; cooler: the reverse
    # Drawn per photo across the whole range, both ways: some photos warm, some cool, some near daylight.
    assert r.min() < 0.85 and r.max() > 1.15 and np.abs(r - 1).min() < 0.02
    assert np.all(out[:, 0, 0, :] == out[:, 7, 7, :])  # one cast over the whole photo


def test_bright_pixels_are_clipped_not_wrapped_and_a_seed_repeats():
    white = np.full((50, 4, 4, 3), 250, dtype=np.uint8)
    out = cast_colours(white, 0.2, np.random.default_rng(1))
    assert out.dtype == np.uint8 and out[..., 0].max() == 255 and out[..., 2].min() >= 200
    again = cast_colours(white, 0.2, np.random.default_rng(1))
    assert np.array_equal(out, again)
    assert not np.array_equal(out, cast_colours(white, 0.2, np.random.default_rng(2)))


def test_the_training_pipeline_casts_only_when_asked():
    assert TrainConfig().colour_cast == 0.0  # off unless a run asks for it
    images, idx, labels = grey_batch(16), np.arange(16), np.zeros(16, dtype=np.int32)
    plain = next(iter(make_dataset(images, idx, labels, 16, shuffle=False)))[0].numpy()
    assert np.all(plain == 120)
    cast = next(iter(make_dataset(images, idx, labels, 16, shuffle=False, colour_cast=0.2)))[0].numpy()
    ratio = cast[:, 0, 0, 0] / cast[:, 0, 0, 2]  # red over blue, per photo
    assert np.ptp(ratio) > 0.2 and np.all(np.abs(cast - 120) <= 0.2 * 120 + 1)
