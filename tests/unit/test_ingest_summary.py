"""`leafdoc ingest`'s summary line counts in the singular when there is one (it said "in 1 classes")."""

from __future__ import annotations

import pytest

from leafdoc.cli import printing


@pytest.mark.parametrize(
    ("images", "classes", "said"),
    [(10, 1, "10 images in 1 class\n"), (1, 1, "1 image in 1 class\n"), (90, 3, "90 images in 3 classes\n")],
)
def test_the_summary_counts_images_and_classes(images, classes, said):
    summary = {"created_version": True, "dataset": "mydata", "version": 1, "n_images": images, "n_classes": classes}
    summary.update(added=images, duplicates=[], near_duplicates=[], rejected=[])
    with printing.out.capture() as captured:
        printing.print_ingest(summary)
    assert f"mydata v1: {said}" in captured.get()
