"""The field photos a model folder carries (inference/calibrate.py): written back as they were given, and the same
photos give the same bytes, so a folder under version control recalibrated with the same photos is unchanged."""

from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image

from leafdoc.inference.calibrate import carried_photos, write_carried_photos
from leafdoc.modelfolder import FIELD_PHOTOS_FILE


def test_the_same_scenes_give_the_same_file_and_read_back_as_they_were(tmp_path):
    yy, xx = np.mgrid[0:40, 0:60]
    scenes = [np.stack([xx * 4, yy * 6, (xx + yy) * k], axis=-1).clip(0, 255).astype(np.uint8) for k in (1, 2, 3)]
    write_carried_photos(tmp_path, scenes)
    first = (tmp_path / FIELD_PHOTOS_FILE).read_bytes()
    time.sleep(2.1)  # a zip's time stamps count in 2-second steps
    write_carried_photos(tmp_path, scenes)
    assert (tmp_path / FIELD_PHOTOS_FILE).read_bytes() == first
    back = [np.asarray(Image.open(io.BytesIO(data))) for _, data in carried_photos(tmp_path / FIELD_PHOTOS_FILE)]
    assert [b.shape for b in back] == [s.shape for s in scenes]
    assert all(np.abs(b.astype(int) - s).mean() < 3 for b, s in zip(back, scenes, strict=True))  # JPEG, in order
    write_carried_photos(tmp_path, scenes[:2])
    assert (tmp_path / FIELD_PHOTOS_FILE).read_bytes() != first
