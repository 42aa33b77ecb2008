"""Which single photos go on the API worker's event loop, and when `leafdoc serve` turns that on: a photo's decoding
cost read from its first bytes, the CPUs a process may use (affinity and a cgroup quota), and the choices from them:
how many API workers, and whether they predict on their loops."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from leafdoc.core.settings import Settings
from leafdoc.service.run import choose_predict_on_loop, choose_workers, usable_cpus
from leafdoc.service.serving import decode_cost


def encoded(fmt: str, size=(120, 80), **save) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, fmt, **save)
    return buf.getvalue()


def test_decode_cost_is_a_sequential_jpegs_size_and_a_pngs_pixels_times_three():
    jpeg = encoded("JPEG")
    assert decode_cost(jpeg) == len(jpeg)
    # A phone's JPEG: a large EXIF segment (and a thumbnail) before the frame, found by walking the segments.
    exif = Image.Exif()
    exif[0x010F] = "x" * 50_000  # Make
    with_exif = encoded("JPEG", exif=exif.tobytes())
    assert len(with_exif) > len(jpeg) + 50_000 and decode_cost(with_exif) == len(with_exif)
    # Progressive: its data is read once per scan (a crafted one has hundreds): not counted as cheap.
    assert decode_cost(encoded("JPEG", progressive=True)) is None
    assert decode_cost(encoded("PNG", (120, 80))) == 120 * 80 * 3
    # A small file can still decode to many pixels (a flat PNG): its header says so.
    flat = io.BytesIO()
    Image.new("RGB", (4000, 3000), (90, 140, 60)).save(flat, "PNG")
    assert len(flat.getvalue()) < 200_000 and decode_cost(flat.getvalue()) == 4000 * 3000 * 3


@pytest.mark.parametrize(
    "data", [encoded("WEBP"), encoded("BMP"), encoded("PNG")[:20], encoded("JPEG")[:30], b"", b"hello"]
)
def test_decode_cost_is_unknown_for_other_formats_and_short_headers(data):
    assert decode_cost(data) is None


def test_usable_cpus_is_the_affinity_capped_by_the_cgroup_quota(tmp_path):
    mine = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    assert usable_cpus(tmp_path / "absent", tmp_path / "absent-v1") == mine
    cpu_max.write_text("max 100000\n")
    assert usable_cpus(cpu_max) == mine
    cpu_max.write_text("150000 100000\n")  # --cpus 1.5: rounded up to 2, never above the affinity
    assert usable_cpus(cpu_max) == min(mine, 2)
    cpu_max.write_text("50000 100000\n")  # half a CPU: still one
    assert usable_cpus(cpu_max) == 1
    cpu_max.write_text("garbage\n")
    assert usable_cpus(cpu_max) == mine


def test_usable_cpus_reads_a_cgroup_v1_quota_where_there_is_no_cpu_max(tmp_path):
    """Hosts with cgroups v1 (or hybrid, as leafdoc's CI machines): a container's `--cpus 1` is cpu.cfs_quota_us
    100000 over cpu.cfs_period_us 100000 (podman 4.3 here), and no cpu.max; without it a replica limited to one CPU
    ran a worker per CPU of the machine."""
    mine = len(os.sched_getaffinity(0))
    v1 = tmp_path / "cpu"
    v1.mkdir()
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")  # no limit
    assert usable_cpus(tmp_path / "absent", v1) == mine
    (v1 / "cpu.cfs_quota_us").write_text("100000\n")  # --cpus 1
    assert usable_cpus(tmp_path / "absent", v1) == 1
    (v1 / "cpu.cfs_quota_us").write_text("150000\n")  # --cpus 1.5: rounded up, never above the affinity
    assert usable_cpus(tmp_path / "absent", v1) == min(mine, 2)
    cpu_max = tmp_path / "cpu.max"  # cgroup v2 wins where both are seen
    cpu_max.write_text("max 100000\n")
    assert usable_cpus(cpu_max, v1) == mine


def test_serve_puts_predictions_on_the_loop_with_a_worker_per_cpu_unless_told(tmp_path):
    auto = Settings(home=tmp_path)
    assert choose_predict_on_loop(auto, workers=2, cpus=2) == (True, "2 workers for 2 CPUs")
    assert choose_predict_on_loop(auto, workers=1, cpus=1) == (True, "1 worker for 1 CPU")
    assert choose_predict_on_loop(auto, workers=1, cpus=2) == (False, "1 worker for 2 CPUs")
    told = Settings(home=tmp_path, predict_on_loop=False)
    assert choose_predict_on_loop(told, workers=4, cpus=2) == (False, "LEAFDOC_PREDICT_ON_LOOP=false")


def test_serve_runs_one_worker_per_cpu_up_to_four_unless_told_with_or_without_the_web_page(tmp_path, monkeypatch):
    # The web page (on by default) no longer holds serve to one worker: it runs in a process of its own.
    for ui in (True, False):
        auto = Settings(home=tmp_path, ui=ui)
        assert choose_workers(auto, cpus=1)[0] == 1
        assert choose_workers(auto, cpus=2) == (2, "one per CPU; --workers or LEAFDOC_API_WORKERS to choose")
        assert choose_workers(auto, cpus=64)[0] == 4 and "one per CPU, at most 4;" in choose_workers(auto, cpus=64)[1]
        # So `leafdoc serve` predicts on the loop wherever 4 workers cover the CPUs.
        for cpus in (1, 2, 3, 4):
            assert choose_predict_on_loop(auto, choose_workers(auto, cpus)[0], cpus)[0] is True
        assert choose_predict_on_loop(auto, choose_workers(auto, 8)[0], 8)[0] is False
    monkeypatch.setenv("LEAFDOC_API_WORKERS", "3")
    assert choose_workers(Settings(home=tmp_path), cpus=64) == (3, "LEAFDOC_API_WORKERS=3")
    monkeypatch.setenv("LEAFDOC_API_WORKERS", "0")
    with pytest.raises(ValueError, match="api_workers"):
        Settings(home=tmp_path)
