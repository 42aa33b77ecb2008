#!/usr/bin/env bash
# Apple in the field, as a recipe (issue 53 item 6): EfficientNet-Lite0 with ImageNet weights, the starter's transfer
# recipe (the head on features computed once, then the backbone's last two stages fine-tuned on the activations below
# them, computed once: --fine-tune-fraction 0.32 --fine-tune-cached), trained on orchard photos of apple
# leaves (Plant Pathology 2021: scab, healthy, frogeye leaf spot = black rot, cedar apple rust, and powdery mildew,
# which PlantVillage lacks), then scored on its own held-out photos: accuracy per class, confusions, calibration,
# and the share of non-leaf photos it refuses (roses: the not-a-leaf check is fitted with daisies and CIFAR-10).
#
#   bash recipes/field-apple.sh FIELD_APPLE_DIR [OUT]          # OUT defaults to runs/field-apple
#
# NOT FOR models/: the copy of Plant Pathology 2021 this recipe reads states no licence, and the original set was
# released under a competition's terms (FGVC8, Kaggle) for research. The model it trains is yours, from your copy,
# for your own use; leafdoc never ships it. With your own copy of Plant Pathology 2021 (train_images/ and train.csv),
# lay its single-label photos out as class folders named like PlantVillage's (scab -> Apple___Apple_scab, healthy ->
# Apple___healthy, frog_eye_leaf_spot -> Apple___Black_rot, rust -> Apple___Cedar_apple_rust, powdery_mildew ->
# Apple___Powdery_mildew) and pass that folder. In leafdoc's own workplace the folder is built from the manifest
# shared/datasets/field-apple.SOURCES.tsv (`python3 shared/datasets/build field-apple DEST`).
# FINE_TUNE_EPOCHS (default 3) and IMAGE_SIZE (default 160) scale it to the machine; what it is and its status:
# recipes/README.md ("The recipes").
set -euo pipefail
DATA=${1:?usage: bash recipes/field-apple.sh FIELD_APPLE_DIR [OUT]}
OUT=${2:-runs/field-apple}
HERE=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${LEAFDOC_SHARED:-$HERE/../shared}/datasets
LEAFDOC=${LEAFDOC:-$HERE/.venv/bin/leafdoc}
for d in "$SHARED/flowers/daisy" "$SHARED/flowers/roses" "$SHARED/cifar10/train"; do
  [ -d "$d" ] || { echo "field-apple: $d is missing: set LEAFDOC_SHARED to the folder that holds datasets/ (non-leaf photos)" >&2; exit 2; }
done
"$LEAFDOC" train --data "$DATA" --out "$OUT/model" --backbone efficientnet_lite0 --weights imagenet \
  --image-size "${IMAGE_SIZE:-160}" --head-on-features --epochs 20 --fine-tune-epochs "${FINE_TUNE_EPOCHS:-3}" \
  --fine-tune-fraction 0.32 --fine-tune-cached --learning-rate 1e-3 --patience 3 \
  --nonleaf "$SHARED/flowers/daisy" --nonleaf "$SHARED/cifar10/train" --resume
"$LEAFDOC" evaluate "$OUT/model" --data "$DATA" --split test --ood "$SHARED/flowers/roses" --report "$OUT/report"
cat >>"$OUT/report/report.md" <<'TERMS'

## Not for models/: the data's terms

This model learnt from Plant Pathology 2021 (FGVC8). The copy this recipe read states no licence, and the original
set was released under a competition's terms for research: the model is its user's, made from their own copy, for
their own use, and leafdoc never ships it. To run it again with your own copy of Plant Pathology 2021
(`train_images/` and `train.csv`), lay its single-label photos out as class folders named like PlantVillage's (scab ->
Apple___Apple_scab, healthy -> Apple___healthy, frog_eye_leaf_spot -> Apple___Black_rot, rust ->
Apple___Cedar_apple_rust, powdery_mildew -> Apple___Powdery_mildew) and run `bash recipes/field-apple.sh FOLDER`.
TERMS
echo "field-apple: report in $OUT/report/report.md (not for models/: see the top of this file)"
