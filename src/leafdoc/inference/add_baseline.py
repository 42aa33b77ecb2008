"""`python -m leafdoc.inference.add_baseline MODEL_DIR DATA_DIR`: add the validation baseline (card `baseline`,
inference/baseline.py) to a model folder calibrated before it existed. DATA_DIR is the folder of class folders the
model was trained on; split.json names its validation photos. The not-a-leaf check itself is left as it is."""

from __future__ import annotations

import sys
from pathlib import Path

from leafdoc.core.errors import LeafdocError, ModelError
from leafdoc.inference.baseline import write_baseline
from leafdoc.inference.calibrate import split_photos
from leafdoc.modelfolder import read_labels, read_split


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m leafdoc.inference.add_baseline MODEL_DIR DATA_DIR", file=sys.stderr)
        return 2
    model_dir, data_dir = Path(argv[0]), Path(argv[1])
    try:
        labels = read_labels(model_dir)
        split = read_split(model_dir)
        val = [p for p, _ in split_photos(data_dir, split, labels)["val"]]
        if not val:
            raise ModelError(f"{data_dir}: none of the validation photos split.json names is there.")
        b = write_baseline(model_dir, val)
    except (LeafdocError, OSError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    print(f"baseline of {b['answers']} validation photos written to {model_dir / 'card.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
