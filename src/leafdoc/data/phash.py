"""Perceptual hashes of photos: how ingest finds near-duplicates (flipped, rotated and re-encoded copies), so
that splitting keeps them on one side (data/splits.py). From a decoded image (imaging/photos.py), never from bytes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PIL import Image

# The perceptual hash: signs of the 63 lowest DCT coefficients (8x8, without the mean) of a 32x32 grey
# thumbnail. Flipping an image negates its odd coefficients along that axis and transposing swaps the axes,
# so each of the 8 flips/rotations maps a hash to another one by a fixed bit permutation and mask. Two
# photos are compared under the map that brings them closest, which is stable under re-encoding. (The
# minimum of 8 difference hashes, used before, was not: a flipped JPEG copy could land 30 bits away while
# unrelated leaves on plain backgrounds collided, since taking the minimum favours leading zero bits.)
_HASH_THUMB = 32
_HASH_FREQS = 8
_HASH_COEFFS = [(u, v) for v in range(_HASH_FREQS) for u in range(_HASH_FREQS) if (u, v) != (0, 0)]
_DCT = np.cos(np.pi * (2 * np.arange(_HASH_THUMB)[None, :] + 1) * np.arange(_HASH_FREQS)[:, None] / (2 * _HASH_THUMB))


def _orbit_maps() -> list[tuple[list[int], int]]:
    """(source bit of each bit, xor mask) for each of the 8 flips/rotations; the identity first."""
    index = {uv: i for i, uv in enumerate(_HASH_COEFFS)}
    maps = []
    for swap in (False, True):
        for flip_x in (False, True):
            for flip_y in (False, True):
                src, mask = [], 0
                for i, (u, v) in enumerate(_HASH_COEFFS):
                    su, sv = (v, u) if swap else (u, v)
                    src.append(index[(su, sv)])
                    if (flip_x and su % 2 == 1) != (flip_y and sv % 2 == 1):
                        mask |= 1 << i
                maps.append((src, mask))
    return maps


_ORBIT_MAPS = _orbit_maps()


def _dct_hash(img: Image.Image) -> int:
    grey = img.convert("L").resize((_HASH_THUMB, _HASH_THUMB), Image.Resampling.BILINEAR)
    coeffs = _DCT @ np.asarray(grey, dtype=np.float64) @ _DCT.T  # [v, u]: v along y, u along x
    return sum(1 << i for i, (u, v) in enumerate(_HASH_COEFFS) if coeffs[v, u] > 0)


def phash_orbits(hashes) -> np.ndarray:
    """(n, 8) uint64: each hash as it would be for the 8 flips/rotations of its image (column 0: itself)."""
    h = np.asarray(hashes, dtype=np.uint64).reshape(-1)
    bits = [(h >> np.uint64(i)) & np.uint64(1) for i in range(len(_HASH_COEFFS))]
    out = np.empty((h.size, len(_ORBIT_MAPS)), dtype=np.uint64)
    for k, (src, mask) in enumerate(_ORBIT_MAPS):
        acc = np.zeros(h.size, dtype=np.uint64)
        for i, s in enumerate(src):
            acc |= bits[s] << np.uint64(i)
        out[:, k] = acc ^ np.uint64(mask)
    return out


def perceptual_hashes(img: Image.Image) -> list[int]:
    """63-bit DCT-sign hashes of the image under the 8 flips/rotations (dihedral group), identity first.

    Near-duplicates (PlantVillage's flipped and rotated copies, re-encoded photos) are found with
    `phash_distance`, which compares under all 8 maps.
    """
    return [int(x) for x in phash_orbits([_dct_hash(img)])[0]]


def canonical_phash(img: Image.Image) -> int:
    """One representative of the dihedral hash set (its minimum): equal for exactly flipped/rotated copies.

    Compare two of them with `phash_distance`, not `hamming`: after re-encoding, the minimum may be
    reached under a different flip, so plain Hamming distance can be large for a near-duplicate.
    """
    return min(perceptual_hashes(img))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def phash_distance(a: int, b: int) -> int:
    """Bits apart of two perceptual hashes under the flip/rotation that brings them closest."""
    return int(np.bitwise_count(phash_orbits([a])[0] ^ np.uint64(b)).min())


def near_duplicate_pairs(hashes, max_bits: int, start: int = 0) -> Iterator[tuple[int, int]]:
    """(i, j) with j < i and i >= start for every two hashes within `max_bits` under some flip/rotation.

    Quadratic, but vectorised: about a second for 5,000 images.
    """
    orbits = phash_orbits(hashes)
    for i in range(max(start, 1), len(orbits)):
        dist = np.bitwise_count(orbits[:i] ^ orbits[i, 0]).min(axis=1)
        for j in np.nonzero(dist <= max_bits)[0]:
            yield i, int(j)
