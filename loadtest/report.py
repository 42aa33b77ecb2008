"""The load-test report: medians over repeats, as Markdown tables and one figure.

python -m loadtest.report loadtest/reports/<date>/results.json   # re-draw from saved results
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

SINGLE, BATCH, ALL, TWELVE_MP = "predict single", "predict batch", "Aggregated", "predict 12 MP"
TARGET_RPS, TARGET_P95_MS, TARGET_RSS_MB = 150.0, 100.0, 400.0
RAW_REFERENCE = "onnx b1 t1 x2"  # batch 1, one ONNX thread per call, 2 calls at once: both cores, like serving
PIPELINE_REFERENCE = "serving path b1 t1 x1"  # bytes -> answer in-process on one thread: a request minus HTTP
PROCESSES_REFERENCE = "serving path b1 t1 x2 processes"  # the same in 2 processes at once: the whole machine's rate


def med(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def _fmt(v: float, digits: int = 0) -> str:
    return "–" if v != v else f"{v:,.{digits}f}"  # NaN -> dash


def _pct(part: float, whole: float) -> str:
    ratio = part / whole if whole else float("nan")
    return "–" if ratio != ratio else f"{ratio:.0%}"


def group(results: dict) -> dict[tuple[str, str], list[dict]]:
    """(setup key, workload) -> the measurements of every repeat, in the order they were run."""
    out: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for m in results["measurements"]:
        out[(setup_key(m["setup"]), m["workload"])].append(m)
    return out


def summarize(ms: list[dict]) -> dict:
    """Medians over repeats for one setup and workload."""

    def stat(name: str, field: str) -> float:
        return med([m["stats"].get(name, {}).get(field) for m in ms])

    types = sorted({n for m in ms for n in m["stats"]})
    per_type = {
        n: {
            "rps": stat(n, "rps"),
            "p50": stat(n, "p50"),
            "p95": stat(n, "p95"),
            "p99": stat(n, "p99"),
            "requests": sum(m["stats"].get(n, {}).get("requests", 0) for m in ms),
            "failures": sum(m["stats"].get(n, {}).get("failures", 0) for m in ms),
        }
        for n in types
    }
    batch = ms[0].get("batch_size", 4)
    images = med(
        [m["stats"].get(SINGLE, {}).get("rps", 0) + batch * m["stats"].get(BATCH, {}).get("rps", 0) for m in ms]
    )

    def ms_per_request(m: dict, field: str) -> float:
        return 1000 * m[field] / max(1, m["stats"].get(ALL, {}).get("requests", 0))

    def per_request(field: str) -> float:
        return med([ms_per_request(m, field) for m in ms])

    def around(m: dict, field: str) -> float | None:
        """The in-process path's figure around a run: the mean of its timings just before and just after."""
        values = [m.get("extra", {}).get(k, {}).get(field) for k in ("in_process_before", "in_process")]
        values = [v for v in values if v]
        return sum(values) / len(values) if values else None

    # Each run that has the in-process path timed around it: the service's predictions/s beside the path's photos/s
    # (their ratio), and the server's CPU ms per request beside the path's CPU ms per photo (their difference).
    paired = []
    for m in ms:
        rps, inproc_rps = m["stats"].get(SINGLE, {}).get("rps"), around(m, "img_per_s")
        if not (rps and inproc_rps):
            continue
        server_ms, inproc_ms = ms_per_request(m, "server_cpu_s"), around(m, "cpu_ms_per_img")
        paired.append(
            {
                "rps": rps,
                "inproc_rps": inproc_rps,
                "ratio": rps / inproc_rps,
                "outside_ms": server_ms - inproc_ms if inproc_ms else None,
                "cpu_share": inproc_ms / server_ms if inproc_ms and server_ms else None,
            }
        )

    return {
        "setup": ms[0]["setup"],
        "runs": len(ms),
        "types": per_type,
        "images_per_s": images,
        "peak_process_mb": max(m["peak_process_mb"] for m in ms),
        "peak_serve_mb": max(m["peak_serve_mb"] for m in ms),
        "peak_nginx_mb": max(m["peak_nginx_mb"] for m in ms),
        "n_processes": max(m["n_processes"] for m in ms),
        "server_cpu_ms": per_request("server_cpu_s"),
        "client_cpu_ms": per_request("client_cpu_s"),
        "other_cores": med([m["other_cpu_s"] / m["seconds"] for m in ms]),
        "server_cores": med([m["server_cpu_s"] / m["seconds"] for m in ms]),
        "client_cores": med([m["client_cpu_s"] / m["seconds"] for m in ms]),
        "loadavg": [m["loadavg_before"] for m in ms],
        "failures": [f for m in ms for f in m["failures"]],
        "paired": paired,
        "paired_ratio": med([r["ratio"] for r in paired]),
        "paired_outside_ms": med([r["outside_ms"] for r in paired]),
        "paired_cpu_share": med([r["cpu_share"] for r in paired]),
    }


def raw_medians(results: dict, field: str = "img_per_s") -> dict[str, float]:
    names = {n for r in results["raw_onnx"] for n in r.get(field, {})}
    return {n: med([r[field].get(n) for r in results["raw_onnx"]]) for n in sorted(names)}


def target_met(s: dict) -> bool:
    t = s["types"].get(SINGLE)
    return bool(
        t
        and t["rps"] >= TARGET_RPS
        and t["p95"] < TARGET_P95_MS
        and t["failures"] == 0
        and s["peak_process_mb"] < TARGET_RSS_MB
    )


def _setup_order(summaries: dict) -> list[str]:
    def order(key):
        s = summaries[key]["setup"]
        stack = (s.get("stack", False), s.get("cpus", ""))
        return (*stack, s["lb"], s["workers"], s["variant"] != "current", s["variant"])

    return sorted(summaries, key=order)


def setup_key(s: dict) -> str:
    """A setup's key in results.json (loadtest.run.Setup as a dict; runs before stack setups lack its fields)."""
    if s.get("stack"):
        return f"stack-w{s['workers']}" + (f"-c{s['cpus']}" if s.get("cpus") else "") + f"-{s['variant']}"
    return f"{'lb' if s['lb'] else 'direct'}-w{s['workers']}-{s['variant']}"


def setup_label(s: dict) -> str:
    if s.get("stack"):
        name = f"compose: nginx + {s['workers']}x api" + (f" ({s['cpus']} CPU each)" if s.get("cpus") else "")
    else:
        name = f"nginx + {s['workers']}x serve -w1" if s["lb"] else f"serve -w{s['workers']}"
    return name if s["variant"] == "current" else f"{name} [{s['variant']}]"


_label = setup_label


def cpu_count(cpus: str | None) -> int | None:
    """How many CPUs a taskset list names ("1", "0-1", "0,2-3"), or None when not pinned."""
    if not cpus:
        return None
    n = 0
    for part in cpus.split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


def throughput_reference(raw: dict, server_cpus: str | None) -> tuple[str, float, str]:
    """What the service's throughput is held to: the in-process serving path on the CPUs the servers have. On
    the whole machine (2 cores), the path in two processes at once; with the servers (and so the raw measurements,
    run.raw_onnx) pinned to one CPU, the path in one process there: two processes on one CPU only switch."""
    if cpu_count(server_cpus) == 1:
        return PIPELINE_REFERENCE, raw.get(PIPELINE_REFERENCE, float("nan")), f"1 process on CPU {server_cpus}"
    return PROCESSES_REFERENCE, raw.get(PROCESSES_REFERENCE, float("nan")), "2 processes"


def single_table(summaries: dict, raw: dict, raw_cpu: dict, server_cpus: str | None = None) -> list[str]:
    ref = raw.get(RAW_REFERENCE, float("nan"))
    inproc = raw_cpu.get(PIPELINE_REFERENCE, float("nan"))
    _, inproc_rate, words = throughput_reference(raw, server_cpus)
    paired = any_paired(summaries)
    if paired:
        words += ", timed around each run: the median of the runs' ratios"
    lines = [
        "| setup | predictions/s | p50 ms | p95 ms | p99 ms | errors | peak RSS, largest process MB "
        "| peak RSS, all serve processes MB (nginx) | server CPU ms/prediction | of which outside the "
        "in-process path | efficiency per CPU (in-process CPU / server CPU) | of the in-process path's "
        f"throughput ({words}) | of raw ONNX b1 | target met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in _setup_order(summaries):
        s = summaries[key]
        t = s["types"].get(SINGLE)
        if not t:
            continue
        nginx = f" (+{s['peak_nginx_mb']:.0f})" if s["setup"]["lb"] else ""
        lines.append(
            f"| {_label(s['setup'])} | {_fmt(t['rps'], 1)} | {_fmt(t['p50'])} | {_fmt(t['p95'])} | {_fmt(t['p99'])} "
            f"| {t['failures']} | {s['peak_process_mb']:.0f} | {s['peak_serve_mb']:.0f}{nginx} "
            f"| {_fmt(s['server_cpu_ms'], 1)} "
            + (
                f"| {_fmt(s['paired_outside_ms'], 1)} | {_pct(s['paired_cpu_share'], 1.0)} "
                f"| {_pct(s['paired_ratio'], 1.0)} "
                if paired
                else f"| {_fmt(s['server_cpu_ms'] - inproc, 1)} | {_pct(inproc, s['server_cpu_ms'])} "
                f"| {_pct(t['rps'], inproc_rate)} "
            )
            + f"| {t['rps'] / ref:.0%} "
            f"| {'**yes**' if target_met(s) else 'no'} |"
        )
    return lines


THROUGHPUT_SHARE = 0.80  # the target: the service at >= 80% of the in-process path's throughput


def any_paired(summaries: dict) -> bool:
    """Whether any setup's runs had the in-process path timed around them (`loadtest.run --paired-seconds`)."""
    return any(s.get("paired") for s in summaries.values())


def paired_table(summaries: dict) -> list[str]:
    """Each run's service rate beside the in-process path's, timed around it: the ratio run by run."""
    lines = [
        "| setup | runs | predictions/s, each run | in-process path photos/s around it (mean of before and after) "
        f"| ratio, each run | ratio, median | runs at {THROUGHPUT_SHARE:.0%} or more | server CPU ms/prediction "
        "outside the in-process path, each run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key in _setup_order(summaries):
        s = summaries[key]
        runs = s.get("paired")
        if not runs:
            continue
        outside = [r["outside_ms"] for r in runs if r["outside_ms"] is not None]
        lines.append(
            f"| {_label(s['setup'])} | {len(runs)} | {', '.join(_fmt(r['rps'], 1) for r in runs)} "
            f"| {', '.join(_fmt(r['inproc_rps'], 1) for r in runs)} "
            f"| {', '.join(format(r['ratio'], '.0%') for r in runs)} "
            f"| {_pct(s['paired_ratio'], 1.0)} | {sum(r['ratio'] >= THROUGHPUT_SHARE for r in runs)} of {len(runs)} "
            f"| {', '.join(_fmt(x, 1) for x in outside) or '–'} |"
        )
    return lines


PHONE_P95_RATIO = 2.0  # a phone photo's p95 within this many times a 256-px photo's, at the same load


def phone_table(phone: dict, single: dict) -> list[str]:
    """Phone photos against the 256-px photos of the same setup: throughput, latency, memory, CPU."""
    lines = [
        "| setup | predictions/s | p50 ms | p95 ms | p99 ms | errors | peak RSS, largest process MB "
        "| server CPU ms/prediction | p95 vs 256-px photos | target met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in _setup_order(phone):
        s, t = phone[key], phone[key]["types"].get(SINGLE)
        if not t:
            continue
        base = (single.get(key) or {}).get("types", {}).get(SINGLE)
        ratio = t["p95"] / base["p95"] if base else float("nan")
        met = base is not None and ratio <= PHONE_P95_RATIO and not t["failures"]
        lines.append(
            f"| {_label(s['setup'])} | {_fmt(t['rps'], 1)} | {_fmt(t['p50'])} | {_fmt(t['p95'])} | {_fmt(t['p99'])} "
            f"| {t['failures']} | {s['peak_process_mb']:.0f} | {_fmt(s['server_cpu_ms'], 1)} | {ratio:.1f}x "
            f"| {'**yes**' if met else 'no'} |"
        )
    return lines


def phone_mix_table(ms_by_setup: dict[str, list[dict]]) -> list[str]:
    """12 MP JPEGs among 256-px photos in one stream: each kind's p95 in the same run, the ratio run by run."""
    lines = [
        "| setup | runs | 256-px photos/s | 12 MP photos/s | p95 ms, 256 px | p95 ms, 12 MP | p95 ratio, each run "
        "| p95 ratio, median | errors | peak RSS, largest process MB | target met |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(ms_by_setup):
        ms = [m for m in ms_by_setup[key] if SINGLE in m["stats"] and TWELVE_MP in m["stats"]]
        if not ms:
            continue
        small, big = [m["stats"][SINGLE] for m in ms], [m["stats"][TWELVE_MP] for m in ms]
        ratios = [b["p95"] / a["p95"] for a, b in zip(small, big, strict=True)]
        errors = sum(t["failures"] for t in small + big)
        ratio = med(ratios)
        met = ratio <= PHONE_P95_RATIO and not errors
        lines.append(
            f"| {_label(ms[0]['setup'])} | {len(ms)} | {_fmt(med([t['rps'] for t in small]), 1)} "
            f"| {_fmt(med([t['rps'] for t in big]), 1)} | {_fmt(med([t['p95'] for t in small]))} "
            f"| {_fmt(med([t['p95'] for t in big]))} | {', '.join(f'{r:.2f}x' for r in ratios)} | {ratio:.2f}x "
            f"| {errors} | {max(m['peak_process_mb'] for m in ms):.0f} | {'**yes**' if met else 'no'} |"
        )
    return lines


def mixed_table(summaries: dict) -> list[str]:
    lines = [
        "| setup | request type | requests/s | p50 ms | p95 ms | p99 ms | errors | images/s (all predictions) "
        "| peak RSS, largest process MB | peak RSS, all serve processes MB (nginx) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in _setup_order(summaries):
        s = summaries[key]
        nginx = f" (+{s['peak_nginx_mb']:.0f})" if s["setup"]["lb"] else ""
        mem = [f"{s['peak_process_mb']:.0f}", f"{s['peak_serve_mb']:.0f}{nginx}"]
        for i, (name, shown) in enumerate(((SINGLE, "single"), (BATCH, "batch"), (ALL, "all, incl. reads"))):
            t = s["types"].get(name)
            if not t:
                continue
            head = [_label(s["setup"]), _fmt(s["images_per_s"], 1), *mem] if i == 0 else [""] * 4
            lines.append(
                f"| {head[0]} | {shown} | {_fmt(t['rps'], 1)} | {_fmt(t['p50'])} | {_fmt(t['p95'])} "
                f"| {_fmt(t['p99'])} | {t['failures']} | {head[1]} | {head[2]} | {head[3]} |"
            )
    return lines


def cpu_table(summaries_by_workload: dict[str, dict]) -> list[str]:
    lines = [
        "| workload | setup | server CPU ms/request | client CPU ms/request | cores: server | client | "
        "everything else | load average before (each run) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for workload, summaries in summaries_by_workload.items():
        for key in _setup_order(summaries):
            s = summaries[key]
            loads = ", ".join(f"{x:.1f}" for x in s["loadavg"])
            lines.append(
                f"| {workload} | {_label(s['setup'])} | {_fmt(s['server_cpu_ms'], 1)} | {_fmt(s['client_cpu_ms'], 1)} "
                f"| {_fmt(s['server_cores'], 2)} | {_fmt(s['client_cores'], 2)} | {_fmt(s['other_cores'], 2)} "
                f"| {loads} |"
            )
    return lines


def variant_table(summaries_by_workload: dict[str, dict], variants: list[str]) -> list[str]:
    """Each variant against the first one, in the same setup and workload (measured alternately)."""
    if len(variants) < 2:
        return []
    base = variants[0]
    lines = [
        f"| workload | setup | variant | predictions/s (single) | p95 ms | server CPU ms/request | vs {base} |",
        "|---|---|---|---|---|---|---|",
    ]
    for workload, summaries in summaries_by_workload.items():
        by_setup: dict[tuple, dict[str, dict]] = defaultdict(dict)
        for s in summaries.values():
            if s["setup"].get("stack"):
                continue  # the stack runs the images as built: no variants
            by_setup[(s["setup"]["lb"], s["setup"]["workers"])][s["setup"]["variant"]] = s
        for (lb, workers), vs in sorted(by_setup.items()):
            ref = vs.get(base)
            for v in variants:
                if v not in vs:
                    continue
                t = vs[v]["types"].get(SINGLE, {})
                ratio = (
                    f"{t.get('rps', 0) / ref['types'][SINGLE]['rps']:.2f}x"
                    if ref and v != base and ref["types"].get(SINGLE)
                    else ""
                )
                name = f"nginx + {workers}x serve -w1" if lb else f"serve -w{workers}"
                lines.append(
                    f"| {workload} | {name} | {v} | {_fmt(t.get('rps', float('nan')), 1)} "
                    f"| {_fmt(t.get('p95', float('nan')))} | {_fmt(vs[v]['server_cpu_ms'], 1)} | {ratio} |"
                )
    return lines


def raw_table(results: dict) -> list[str]:
    runs = results["raw_onnx"]
    cpu = raw_medians(results, "cpu_ms_per_img")
    lines = [
        "| configuration | "
        + " | ".join(f"img/s, run {i + 1}" for i in range(len(runs)))
        + " | img/s, median | process CPU ms/img, median |",
        "|---|" + "---|" * (len(runs) + 2),
    ]
    for name, value in raw_medians(results).items():
        cells = " | ".join(_fmt(r["img_per_s"].get(name, float("nan")), 1) for r in runs)
        lines.append(f"| {name} | {cells} | {_fmt(value, 1)} | {_fmt(cpu.get(name, float('nan')), 2)} |")
    return lines


def plot(summaries_by_workload: dict[str, dict], raw: dict, path: Path, server_cpus: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    workload = "single" if "single" in summaries_by_workload else next(iter(summaries_by_workload))
    summaries = summaries_by_workload[workload]
    keys = [k for k in _setup_order(summaries) if SINGLE in summaries[k]["types"]]
    labels = [_label(summaries[k]["setup"]) for k in keys]
    x = np.arange(len(keys))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.5))
    width = 0.26
    for i, (p, color) in enumerate((("p50", "#9ecae1"), ("p95", "#3182bd"), ("p99", "#08519c"))):
        ax1.bar(x + (i - 1) * width, [summaries[k]["types"][SINGLE][p] for k in keys], width, label=p, color=color)
    ax1.axhline(TARGET_P95_MS, color="#d62728", ls="--", lw=1, label=f"target p95 < {TARGET_P95_MS:.0f} ms")
    ax1.set_title(f"/v1/predict latency ({workload} workload, median of runs)")
    ax1.set_ylabel("ms")
    ax1.set_xticks(x, labels, fontsize=8, rotation=30, ha="right")
    ax1.legend(fontsize=8)
    width = 0.8 / max(1, len(summaries_by_workload))
    for i, (w, sums) in enumerate(summaries_by_workload.items()):
        vals = [sums[k]["types"].get(SINGLE, {}).get("rps", 0) if k in sums else 0 for k in keys]
        ax2.bar(x + (i - (len(summaries_by_workload) - 1) / 2) * width, vals, width, label=f"{w} workload")
    ax2.axhline(TARGET_RPS, color="#d62728", ls="--", lw=1, label=f"target {TARGET_RPS:.0f}/s")
    where = f"CPU {server_cpus}" if server_cpus else "2 cores"  # the raw measurements ran where the servers did
    if RAW_REFERENCE in raw:
        ax2.axhline(raw[RAW_REFERENCE], color="#2ca02c", ls=":", lw=1.5, label=f"raw ONNX b1, {where}")
    ref_name, ref_rate, words = throughput_reference(raw, server_cpus)
    around = med([r["inproc_rps"] for k in keys for r in summaries[k].get("paired", [])])
    label = f"in-process serving path, {words}"
    if around == around:  # timed around each run: what the runs are held to (median)
        ax2.axhline(around, color="#9467bd", ls="-.", lw=1.2, label=f"{label}, around the runs")
    elif ref_name in raw:
        ax2.axhline(ref_rate, color="#9467bd", ls="-.", lw=1.2, label=label)
    ax2.set_title("single-image predictions/s")
    ax2.set_xticks(x, labels, fontsize=8, rotation=30, ha="right")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(results: dict, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    groups = group(results)
    by_workload: dict[str, dict] = defaultdict(dict)
    for (key, workload), ms in groups.items():
        by_workload[workload][key] = summarize(ms)
    raw = raw_medians(results)
    mach = results["machine"]
    repeats = max((m["repeat"] for m in results["measurements"]), default=0)
    opts = results["options"]
    variants = list(results["variants"])
    lines = [
        f"# leafdoc load test, {results['started'][:10]}",
        "",
        "```bash",
        results["command"],
        "```",
        "",
        f"- Commit {results['commit']}; started {results['started']}, finished {results.get('finished', '?')}.",
        f"- Machine: {mach['cpus']} CPUs ({mach['cpu_model']}), {mach['memory_gb']} GB RAM, Python {mach['python']}.",
        f"- {repeats} run(s) of every setup; each: {opts['warmup']:.0f} s warm-up, then {opts['duration']:.0f} s "
        f"measured with {opts['users']} Locust users sending requests back to back (closed loop, no think time). "
        "Figures are medians over the runs; errors are summed; peak memory is the highest of the runs.",
        "- Locust (one process, FastHttpUser) runs on the same machine and eats CPU the server cannot use: "
        "its CPU per request is in the CPU table. "
        + (f"Client pinned to CPUs {opts['client_cpus']}. " if opts.get("client_cpus") else "Client not pinned. ")
        + (f"Servers pinned to CPUs {opts['server_cpus']}." if opts.get("server_cpus") else "Servers not pinned."),
        "- Other engineers' jobs shared the machine: `everything else` in the CPU table is the CPU they used "
        "during each measurement, in cores.",
        "- Setups: `serve -wN` is `leafdoc serve --workers N` (uvicorn workers on one shared socket); "
        "`nginx + Nx serve -w1` is nginx (1 worker process) balancing round robin over N single-worker "
        "replicas on their own ports, sharing one data home. All run with `--no-consumer`. `compose: nginx + Nx api` "
        "is deploy/compose.yaml's stack in containers (deploy/stack.sh), N API replicas (a worker per CPU of each "
        "one's limit) behind its nginx, with PostgreSQL, Redis, the S3 store and the worker running beside them.",
        "",
        f"## Single-image predictions (`/v1/predict` only): the target is ≥ {TARGET_RPS:.0f}/s at p95 < "
        f"{TARGET_P95_MS:.0f} ms, no errors, every serving process < {TARGET_RSS_MB:.0f} MB",
        "",
    ]
    if "single" in by_workload:
        raw_cpu = raw_medians(results, "cpu_ms_per_img")
        lines += single_table(by_workload["single"], raw, raw_cpu, opts.get("server_cpus"))
        ref_name, ref_rate, _ = throughput_reference(raw, opts.get("server_cpus"))
        ref_words = (
            "the same path in two processes at once, each on one thread, counted together"
            if ref_name == PROCESSES_REFERENCE
            else f"the same path in one process on one thread, pinned to the servers' CPU {opts.get('server_cpus')}"
        )
        lines += [
            "",
            f"`of raw ONNX b1`: predictions/s over raw ONNX Runtime `{RAW_REFERENCE}` "
            f"({_fmt(raw.get(RAW_REFERENCE, float('nan')), 1)} img/s: batch 1, 2 calls at once on 1-thread "
            "sessions, preprocessed arrays). The in-process path is JPEG bytes to the answer in-process: decode, "
            "quality checks, resize, ONNX, decision. "
            + (
                "`of which outside the in-process path`: server CPU per prediction minus the in-process path's CPU "
                "per photo, each run against the path timed around it (median of the runs), that is HTTP, multipart "
                "parsing, FastAPI, metrics and colder caches; `efficiency per CPU` the ratio of the two. `of the "
                f"in-process path's throughput`: predictions/s over `{ref_name}` ({ref_words}; the issue's target is "
                "80%) timed for as long as a measured slice, before the first one and after each one, with the "
                "servers idle; each run is held to the mean of the timings just before and just after it, and the "
                "table gives the median of the runs' ratios (run by run below). At the start and the end of the run "
                f"the same path did {_fmt(ref_rate, 1)} photos/s (the raw table)."
                if any_paired(by_workload["single"])
                else "`of which outside the in-process path`: server CPU per prediction minus the CPU of "
                f"`{PIPELINE_REFERENCE}` ({_fmt(raw_cpu.get(PIPELINE_REFERENCE, float('nan')), 2)} ms), that is "
                "HTTP, multipart parsing, FastAPI, metrics and colder caches. `of the in-process path's "
                f"throughput`: predictions/s over `{ref_name}` ({ref_words}; the issue's target is 80%): "
                f"{_fmt(ref_rate, 1)} photos/s at the start and the end of the run (the raw table)."
            ),
            "",
        ]
        pt = paired_table(by_workload["single"])
        if len(pt) > 2:
            lines += [
                "### The service beside the in-process path, run by run",
                "",
                "The machine's speed drifts by 10-20% within minutes, so the in-process path is timed on the same "
                "photos for as long as a measured slice, before the first and after each one, and each run is held "
                "to the mean of the timings just before and just after it.",
                "",
                *pt,
                "",
            ]
    if "phone" in by_workload:
        lines += [
            "## Phone photos (`/v1/predict` with real field photos of 1,500 px or more on the short side and 12 MP "
            f"JPEGs made from them): the target is a p95 within {PHONE_P95_RATIO:.0f}x of the 256-px photos' "
            "at the same load",
            "",
            *phone_table(by_workload["phone"], by_workload.get("single", {})),
            "",
        ]
    if "phone-sent" in by_workload:
        lines += [
            "## Phone photos as leafdoc's web page and desktop app send them (the same photos made 1024 px on the "
            "long side, JPEG 90, EXIF applied, by `leafdoc.imaging.upload_size` before sending; the page does the "
            "same in the browser)",
            "",
            *phone_table(by_workload["phone-sent"], by_workload.get("single", {})),
            "",
        ]
    if "12mp" in by_workload:
        lines += [
            "## 12 MP photos alone (`/v1/predict` with 4000x3000 baseline JPEGs, quality 90, as phone cameras "
            "write them), against the 256-px photos with the same number of users",
            "",
            *phone_table(by_workload["12mp"], by_workload.get("single", {})),
            "",
        ]
    if "phone-mix" in by_workload:
        mix = {key: ms for (key, workload), ms in groups.items() if workload == "phone-mix"}
        lines += [
            "## 12 MP photos among 256-px photos (one single diagnosis in ten a 12 MP JPEG, in one stream): the "
            f"target is the 12 MP photos' p95 within {PHONE_P95_RATIO:.0f}x of the 256-px photos' at the same load",
            "",
            *phone_mix_table(mix),
            "",
        ]
    if "mixed" in by_workload:
        lines += [
            "## Mixed workload (the locustfile's mix: single predictions, batches, catalogue and stats reads)",
            "",
            *mixed_table(by_workload["mixed"]),
            "",
        ]
    lines += ["## CPU", "", *cpu_table(dict(by_workload)), ""]
    vt = variant_table(dict(by_workload), variants)
    if vt:
        lines += ["## Variants, measured alternately in the same run", "", *vt, ""]
        lines += [f"- `{v}`: {what}" for v, what in results["variants"].items()] + [""]
    timed = {r.get("onnx_variant", "fp32") for r in results.get("raw_onnx", [])} or {"fp32"}
    copy = " and ".join("model.onnx (fp32)" if v == "fp32" else f"its {v} copy" for v in sorted(timed))
    lines += ["## Raw ONNX Runtime on the same photos (start and end of the run)", ""]
    lines += [f"The model timed here and in the in-process path: {copy}, the copy the servers serve.", ""]
    lines += [*raw_table(results), ""]
    lines += [
        "Configurations: `bN` batch size, `tN` intra-op threads per session (`default`: ONNX Runtime's own "
        "choice), `xN` threads calling at once; `load` is decode + quality checks + resize (`Predictor.load`); "
        "`serving path` is load + ONNX + decision, what a request costs without HTTP.",
        "",
        "![latency and throughput](latency.png)",
        "",
    ]
    failures = [f for ws in by_workload.values() for s in ws.values() for f in s["failures"]]
    if failures:
        lines += ["## Failures seen", "", *[f"- {f}" for f in failures[:20]], ""]
    plot(dict(by_workload), raw, out_dir / "latency.png", opts.get("server_cpus"))
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


if __name__ == "__main__":
    src = Path(sys.argv[1])
    print(write_report(json.loads(src.read_text()), src.parent))
