"""Turn the side-by-side results into figures, ratios, Markdown tables and PNG plots.

Input is the JSON :mod:`bench.run_all` writes: per scenario, per system, per operation, one
:class:`harness.Result` dict per repeat. Every figure is summarised as the median with the
min–max over repeats, and compared with the bare-PyAV limit and with the best *other* peer
(for robodm-engine: the better of robodm 0.1.0 and LeRobot; for each peer: the best of the
rest). A repeat that reported an error is left out of the statistics and flagged.
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness

MB = 1e6


@dataclass(frozen=True)
class Figure:
    """One column of the tables: which operation it comes from and how to read it."""

    key: str
    title: str
    unit: str
    op: str
    value: Callable[[dict[str, Any]], float | None]
    higher_is_better: bool = True
    limit_op: str | None = None  # the limit's operation to compare with (None: no limit)


def _rate(result: dict[str, Any]) -> float | None:
    return result["frames"] / result["seconds"] if result["seconds"] > 0 else None


def _mb(key: str) -> Callable[[dict[str, Any]], float | None]:
    def value(result: dict[str, Any]) -> float | None:
        return None if result.get(key) is None else result[key] / MB
    return value


FIGURES: tuple[Figure, ...] = (
    Figure("write", "write", "frames/s", "write", _rate, limit_op="write"),
    Figure("read_seq", "read, sequential", "frames/s", "read_seq", _rate, limit_op="read_seq"),
    Figure("read_random", "read, random step", "steps/s", "read_random", _rate,
           limit_op="read_random"),
    # The cheapest possible shuffle decodes every frame once: its limit is the sequential one.
    Figure("read_shuffled", "read, shuffled batches", "frames/s", "read_shuffled", _rate,
           limit_op="read_seq"),
    Figure("size", "on disk", "MB", "write", _mb("bytes"), higher_is_better=False,
           limit_op="write"),
    Figure("psnr", "PSNR", "dB", "read_seq", lambda r: r.get("psnr"), limit_op="read_seq"),
    Figure("mem_write", "peak memory, write", "MB", "write", _mb("peak_memory"),
           higher_is_better=False, limit_op="write"),
    Figure("mem_read", "peak memory, sequential read", "MB", "read_seq", _mb("peak_memory"),
           higher_is_better=False, limit_op="read_seq"),
)
FIGURE_BY_KEY = {f.key: f for f in FIGURES}


@dataclass(frozen=True)
class Stat:
    """Median and range of one figure over repeats; ``errors`` counts failed repeats."""

    median: float | None
    low: float | None
    high: float | None
    repeats: int
    errors: list[str]

    @property
    def ok(self) -> bool:
        """True when at least one repeat gave a value."""
        return self.median is not None


def stat(results: list[dict[str, Any]], figure: Figure) -> Stat:
    """Summarise ``figure`` over the repeats of one (scenario, system, operation)."""
    errors = sorted({r["error"] for r in results if r.get("error")})
    values = [v for r in results if not r.get("error") and (v := figure.value(r)) is not None]
    if not values:
        return Stat(None, None, None, 0, errors)
    return Stat(statistics.median(values), min(values), max(values), len(values), errors)


def ratio(value: float | None, other: float | None) -> float | None:
    """``value / other``, or None when either is missing or ``other`` is zero."""
    if value is None or other is None or other == 0 or not math.isfinite(other):
        return None
    return value / other


@dataclass(frozen=True)
class Cell:
    """One system's figure in one scenario, with its comparisons."""

    stat: Stat
    to_limit: float | None
    to_best_peer: float | None
    best_peer: str | None


def source_op(figure: Figure, is_limit: bool) -> str:
    """The operation a figure is read from: the limit's own for the limit row."""
    return figure.limit_op if is_limit and figure.limit_op else figure.op


def cells(data: dict[str, Any], scenario: str) -> dict[str, dict[str, Cell]]:
    """Every system's cells for ``scenario``: ``{system key: {figure key: Cell}}``."""
    systems = data["systems"]
    runs = data["runs"][scenario]
    stats = {
        s["key"]: {
            f.key: stat(runs.get(s["key"], {}).get(source_op(f, s["limit"]), []), f)
            for f in FIGURES
        }
        for s in systems
    }
    limit = next((stats[s["key"]] for s in systems if s["limit"]), None)
    peers = [s["key"] for s in systems if not s["limit"]]
    out: dict[str, dict[str, Cell]] = {}
    for system in systems:
        key = system["key"]
        row: dict[str, Cell] = {}
        for f in FIGURES:
            own = stats[key][f.key]
            if system["limit"]:
                row[f.key] = Cell(own, None, None, None)
                continue
            limit_value = limit[f.key].median if limit and f.limit_op else None
            others = [(p, stats[p][f.key]) for p in peers if p != key and stats[p][f.key].ok]
            best = None
            if others:
                pick = max if f.higher_is_better else min
                best = pick(others, key=lambda item: item[1].median or 0.0)
            row[f.key] = Cell(
                own,
                ratio(own.median, limit_value),
                ratio(own.median, best[1].median) if best else None,
                best[0] if best else None,
            )
        out[key] = row
    return out


# --- formatting ----------------------------------------------------------------------------


def fmt(value: float | None, unit: str = "") -> str:
    """A figure with sensible precision: 3 significant digits, thousands separators."""
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    if unit == "dB":
        return f"{value:.1f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(value: float | None) -> str:
    """``0.86×``, or ``—``."""
    return "—" if value is None else f"{value:.2f}×"


def _cell_text(cell: Cell, figure: Figure, labels: dict[str, str], raw_mb: float) -> str:
    s = cell.stat
    if not s.ok:
        return "✗ " + "; ".join(s.errors)[:160] if s.errors else "—"
    text = f"**{fmt(s.median, figure.unit)}**"
    if s.repeats > 1 and s.low != s.high:
        text += f" ({fmt(s.low, figure.unit)}–{fmt(s.high, figure.unit)})"
    if figure.key == "size" and s.median:
        text += f"<br>{raw_mb / s.median:,.0f}× smaller than raw"
    parts = []
    if cell.to_limit is not None:
        parts.append(f"{fmt_ratio(cell.to_limit)} limit")
    if cell.to_best_peer is not None and cell.best_peer is not None:
        parts.append(f"{fmt_ratio(cell.to_best_peer)} {labels[cell.best_peer]}")
    if parts:
        text += "<br>" + " · ".join(parts)
    if s.errors:
        text += f"<br>⚠ {len(s.errors)} failed repeat(s)"
    return text


def scenario_table(data: dict[str, Any], scenario: dict[str, Any]) -> str:
    """The Markdown table of one scenario: a row per system, a column per figure."""
    labels = {s["key"]: s["short"] for s in data["systems"]}
    table = cells(data, scenario["name"])
    raw_mb = scenario["raw_bytes"] / MB
    header = ["system", *(f"{f.title} ({f.unit})" for f in FIGURES)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for system in data["systems"]:
        row = [system["label"]]
        for f in FIGURES:
            row.append(_cell_text(table[system["key"]][f.key], f, labels, raw_mb))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def notes(data: dict[str, Any], scenario: str) -> list[str]:
    """Distinct notes and errors the workers reported for ``scenario``."""
    seen: dict[str, None] = {}
    labels = {s["key"]: s["label"] for s in data["systems"]}
    for system, ops in data["runs"][scenario].items():
        for op, results in ops.items():
            for result in results:
                for note in result.get("notes", []):
                    seen[f"{labels[system]}, {op}: {note}"] = None
                if result.get("error"):
                    seen[f"{labels[system]}, {op} failed: {result['error']}"] = None
    return list(seen)


def headline(data: dict[str, Any], system: str = "ours") -> dict[str, dict[str, Cell]]:
    """``{scenario name: {figure key: Cell}}`` for one system (empty if it did not run)."""
    if system not in {s["key"] for s in data["systems"]}:
        return {}
    return {s["name"]: cells(data, s["name"])[system] for s in data["scenarios"]}


# --- plots ---------------------------------------------------------------------------------


def _publish_png(fig: Any, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    harness.publish(path, buffer.getvalue())


def plot_figures(data: dict[str, Any], keys: tuple[str, ...], path: Path, title: str) -> None:
    """Grouped bars (scenarios × systems) with min–max error bars, one panel per figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = [s["name"] for s in data["scenarios"]]
    systems = data["systems"]
    columns = 2
    rows = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(12, 3.6 * rows), squeeze=False)
    width = 0.8 / len(systems)
    for ax, key in zip(axes.flat, keys, strict=False):
        figure = FIGURE_BY_KEY[key]
        for i, system in enumerate(systems):
            medians, lows, highs = [], [], []
            for scenario in scenarios:
                op_results = data["runs"][scenario].get(system["key"], {})
                s = stat(op_results.get(source_op(figure, system["limit"]), []), figure)
                medians.append(s.median or 0.0)
                lows.append((s.median or 0.0) - (s.low or 0.0))
                highs.append((s.high or 0.0) - (s.median or 0.0))
            positions = [j + (i - (len(systems) - 1) / 2) * width for j in range(len(scenarios))]
            ax.bar(positions, medians, width, yerr=[lows, highs], capsize=2,
                   label=system["short"], hatch="//" if system["limit"] else None,
                   alpha=0.85)
        ax.set_title(f"{figure.title} ({figure.unit})")
        ax.set_xticks(range(len(scenarios)), scenarios, fontsize=8)
        if figure.unit in ("frames/s", "steps/s"):
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    _publish_png(fig, path)
    plt.close(fig)


# --- the document --------------------------------------------------------------------------

_METHOD = """\
## How it is measured

- **Content**: `robodm_engine.synthetic`, the same bytes for every system: per step two
  RGB cameras (`cam_high`, `cam_wrist`: a textured tabletop under a panning camera with moving
  objects and sensor noise, so codecs behave as on camera footage), a uint16 depth image in
  millimetres, float32 state (14,) and action (7,). A *frame* is one time step with all its
  images (two RGB + one depth); *raw* is the sum of the arrays' sizes.
- **Isolation**: every (scenario, system, operation, repeat) runs in a fresh process, so imports
  and caches of one run never help another; repeats are interleaved across systems. Content
  generation, imports and result checks are not timed. Each figure is the **median** of the
  repeats with the **min–max** in brackets.
- **write**: every episode through the system's writer: robodm-engine and robodm 0.1.0
  `Trajectory(...).add_by_dict` per step then `close()` (one Matroska file per episode);
  LeRobot `LeRobotDataset.create`, `add_frame`, `save_episode`, `finalize` (its defaults:
  AV1 via SVT-AV1 for the cameras, depth as an `image` feature, i.e. PNG frames).
- **read, sequential**: every trajectory whole, in order (`Trajectory(path).load()`; LeRobot:
  a `DataLoader` over `LeRobotDataset`, batch 32, no workers, PyAV backend). The PSNR of the
  decoded camera frames against the originals is computed from this read (LeRobot's float
  frames are rounded back to uint8), and state, action and depth are checked for exact equality.
- **read, random step**: {random_steps} single steps at random (episode, step) positions, each a
  fresh read of one step (`load(data_slice=slice(k, k + 1))`; LeRobot: `dataset[i]`).
- **read, shuffled batches**: every step once in batches of {batch_size} through the system's
  training loader: robodm-engine `VLADataset(path).to_torch(shuffle=True)` (trajectory order
  and steps within each trajectory shuffled) in a `DataLoader`; LeRobot
  `DataLoader(shuffle=True)` (uniform over all steps, a seek per sample); robodm 0.1.0 has no
  step loader outside Ray, so the same algorithm as robodm-engine's with its reader.
- **peak memory**: the process's peak resident memory during the operation above its level just
  before (Linux `VmHWM`, reset through `/proc/self/clear_refs`), so the generated input
  content held by the writer's caller is not counted.
- **limit**: bare PyAV doing only what any writer or reader of these files must: encoding the
  three image streams with robodm-engine's settings (libx264 crf 23 preset medium yuv420p with
  frame threads; ffv1 for depth) into one Matroska file per episode, and decoding them back to
  arrays; a random step decodes each stream from its keyframe to the step. The limit of a
  shuffled read is the sequential one (the cheapest shuffle decodes every frame once). It
  writes no state or action, so it is slightly optimistic.
- **ratios** under each figure: to the limit, and to the best of the *other* systems
  (for sizes and memory, smaller is better, so a ratio below 1 wins there).

## Reading the results

- **robodm 0.1.0 reads sequentially faster than robodm-engine** (and, at 224x224, than the
  limit) because it does less: it stores depth
  (any non-RGB array) as pickled raw packets, about 4x the bytes of the whole file, so there is
  nothing to decode; the limit and robodm-engine decode lossless ffv1 depth, which dominates
  their read time. Reading robodm 0.1.0's files also means unpickling (robodm-engine reads
  them only with `allow_pickle=True`).
- **robodm 0.1.0's single-step reads fail**: `load(data_slice=slice(k, k + 1))` returns no
  camera frame, hence the ✗.
- **Random steps favour LeRobot**: it encodes with a keyframe every 2 frames (`g=2`), so a
  random frame costs one or two decodes, and pays for it in write speed. robodm-engine keeps
  x264's default keyframe interval (250 frames, longer than these episodes), for small files
  and fast sequential reads, so a random step decodes its camera streams from the start of
  the episode (depth, intra-only, from the step itself). Trajectories meant for random access
  can be written with a shorter keyframe interval, `codec_options={{"libx264": {{"g": "10"}}}}`:
  a step then decodes from its keyframe.
- **Shuffled batches are not the same shuffle**: LeRobot's `DataLoader(shuffle=True)` is
  uniform over steps and seeks per sample; robodm-engine's `to_torch(shuffle=True)` decodes
  each trajectory once, in a random order, and shuffles steps within it (mix across
  trajectories with several DataLoader workers or `iter_batches(local_shuffle_buffer_size=...)`).
- **Peak memory of a sequential read** is dominated by the decoded arrays `load()` returns
  (a whole trajectory); the limit keeps no frames.
"""


def _machine_section(data: dict[str, Any]) -> str:
    m = data["machine"]
    versions = ", ".join(
        f"{k} {v if isinstance(v, str) else ' / '.join(f'{a} {b}' for a, b in v.items())}"
        for k, v in m["versions"].items()
    )
    s = data["settings"]
    return "\n".join([
        "## Machine and run",
        "",
        f"- Generated {data['created']} by `{data['command']}` in {data['seconds'] / 60:.1f} min.",
        f"- CPU: {m['cpu']}; {m['cpus_available']} of {m['logical_cpus']} logical CPUs "
        f"available to the run; {m['memory_gib']} GiB memory; Linux {m['kernel']}; "
        f"Python {m['python']}.",
        "- Load average (1/5/15 min) before: "
        + " / ".join(f"{x:.2f}" for x in m["loadavg"])
        + ", after: " + " / ".join(f"{x:.2f}" for x in m.get("loadavg_after", [])) + ".",
        f"- Software: {versions}.",
        f"- {s['repeats']} repeat(s); {s['episodes']} episode(s) of {s['seconds']:g} s per "
        f"scenario; random reads: {s['random_steps']} steps; batches of {s['batch_size']}.",
    ])


def _headline_table(data: dict[str, Any]) -> str:
    keys = ("write", "read_seq", "read_random", "read_shuffled", "size", "psnr")
    labels = {s["key"]: s["short"] for s in data["systems"]}
    header = ["scenario", *(f"{FIGURE_BY_KEY[k].title} ({FIGURE_BY_KEY[k].unit})" for k in keys)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in headline(data).items():
        out = [name]
        for key in keys:
            cell = row[key]
            text = fmt(cell.stat.median, FIGURE_BY_KEY[key].unit) if cell.stat.ok else "✗"
            if cell.to_best_peer is not None and cell.best_peer is not None:
                text += f" ({fmt_ratio(cell.to_best_peer)} {labels[cell.best_peer]})"
            out.append(text)
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


def headline_line(data: dict[str, Any]) -> str:
    """One line for the README: robodm-engine's figures on the first scenario."""
    first = data["scenarios"][0]
    rows = headline(data)
    if not rows:
        return "robodm-engine was not in this run"
    row = rows[first["name"]]
    labels = {s["key"]: s["short"] for s in data["systems"]}

    def part(key: str, what: str) -> str:
        cell = row[key]
        if not cell.stat.ok:
            return f"{what}: failed"
        text = f"{what} {fmt(cell.stat.median, FIGURE_BY_KEY[key].unit)} {FIGURE_BY_KEY[key].unit}"
        if cell.to_best_peer is not None and cell.best_peer is not None:
            text += f" ({fmt_ratio(cell.to_best_peer)} {labels[cell.best_peer]})"
        return text

    size = row["size"].stat.median
    raw = f", {first['raw_bytes'] / MB / size:,.0f}x smaller than raw" if size else ""
    return (f"{first['name']}, 2 cameras + depth: " + "; ".join([
        part("write", "write"), part("read_seq", "sequential read"),
        part("read_shuffled", "shuffled batches"),
    ]) + raw)


def render_document(data: dict[str, Any], doc: Path) -> str:
    """The whole ``docs/benchmarks.md``; writes its PNG plots under ``img/`` beside ``doc``."""
    img = doc.parent / "img"
    plot_figures(data, ("write", "read_seq", "read_random", "read_shuffled"),
                 img / "benchmarks-throughput.png", "Throughput (median, min–max)")
    plot_figures(data, ("size", "psnr", "mem_write", "mem_read"),
                 img / "benchmarks-size-memory.png", "Size, quality and memory")
    parts = [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/run_all.py: edit the generator, not this file. -->",
        "",
        "robodm-engine against robodm 0.1.0, LeRobot 0.6.1 and bare PyAV (the limit), side by "
        "side in one run on the same generated content. Regenerate this page, its plots and "
        "`docs/benchmarks.json` (every raw result) with `.venv/bin/python -m bench.run_all` "
        "(`--quick` for a smoke test; `--from-json` to re-render without measuring).",
        "",
        "## Headline: robodm-engine, with its ratio to the best other system",
        "",
        _headline_table(data),
        "",
        _machine_section(data),
        "",
        _METHOD.format(**data["settings"]),
        "## Results",
        "",
        "Cells: **median** (min–max over repeats), then the ratio to the limit and to the best "
        "other system named.",
        "",
        "![throughput](img/benchmarks-throughput.png)",
        "",
        "![size, quality and memory](img/benchmarks-size-memory.png)",
        "",
    ]
    for scenario in data["scenarios"]:
        parts += [
            f"### {scenario['name']}: {scenario['episodes']} episode(s) × {scenario['steps']} "
            f"steps, raw {scenario['raw_bytes'] / MB:,.1f} MB",
            "",
            scenario_table(data, scenario),
            "",
        ]
        parts += [f"- {n}" for n in notes(data, scenario["name"])]
        parts.append("")
    default = data.get("robodm_default")
    if default:
        write, read = default["write"], default["read_seq"]
        rate = fmt(_rate(write)) if not write.get("error") else "failed"
        parts += [
            "### robodm 0.1.0 with its default codec",
            "",
            f"robodm 0.1.0's `video_codec=\"auto\"` picks libaom-av1 (crf 30, g 2) for RGB images. "
            f"On one {default['name']} episode of {default['scenario']['steps']} steps it wrote "
            f"**{rate} frames/s** ({fmt((write.get('bytes') or 0) / MB)} MB; sequential read "
            f"{fmt(_rate(read)) if not read.get('error') else 'failed'} frames/s, PSNR "
            f"{fmt(read.get('psnr'), 'dB')} dB), too slow to run on the full content, so the "
            "tables use libx264, its other lossy option and robodm-engine's default.",
            "",
        ]
    scaling_data = data.get("scaling")
    if scaling_data:
        from bench import scaling

        scaling.plot(scaling_data["measured"], scaling_data["rows"],
                     img / "benchmarks-scaling.png")
        parts += [
            "## Scaling",
            "",
            scaling.render_markdown(scaling_data["measured"], scaling_data["rows"],
                                    scaling.Assumptions()),
            "",
            "![scaling](img/benchmarks-scaling.png)",
            "",
        ]
    return "\n".join(parts).rstrip() + "\n"
