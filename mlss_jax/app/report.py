"""The pipeline's report: one self-contained HTML page (images embedded) and its Markdown twin.

It reads what the stages wrote under the run directory through each stage's manifest
(:mod:`mlss_jax.app.manifest`): each level's config and metrics, the level report (NMI), the
evaluation sweep and its plots, the control grids, and the stage timings.
"""

from __future__ import annotations

import base64
import html
import json
import math
import platform
import time
from pathlib import Path

from mlss_jax.app.evaluate import PRODUCER as EVALUATE
from mlss_jax.app.manifest import output_path, output_settings
from mlss_jax.app.paths import RunLayout
from mlss_jax.metrics.truncation_sweep import level_tradeoffs
from mlss_jax.runtime.run_state import RUN_CONFIG
from mlss_jax.viz.plots import method_label


def _read_json(path: Path | None) -> dict | None:
    return json.loads(path.read_text()) if path is not None and path.is_file() else None


def environment() -> dict:
    import flax
    import jax

    device = jax.devices()[0]
    return {"jax": jax.__version__, "flax": flax.__version__, "python": platform.python_version(),
            "device": f"{device.platform}: {device.device_kind} x{jax.device_count()}",
            "machine": f"{platform.machine()}, {_cpu_count()} CPU cores"}


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


class _Doc:
    """Builds the HTML and the Markdown side by side."""

    def __init__(self, out: Path) -> None:
        self.out, self.html, self.md = out, [], []

    def heading(self, text: str, level: int = 2) -> None:
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")
        self.md += ["#" * level + " " + text, ""]

    def para(self, text: str) -> None:
        self.html.append(f"<p>{html.escape(text)}</p>")
        self.md += [text, ""]

    def table(self, header: list[str], rows: list[list]) -> None:
        cells = lambda row, tag: "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in row)
        self.html.append("<table><tr>" + cells(header, "th") + "</tr>"
                         + "".join("<tr>" + cells(r, "td") + "</tr>" for r in rows) + "</table>")
        self.md += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        self.md += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows] + [""]

    def image(self, path: Path | None, caption: str) -> None:
        if path is None or not path.is_file():
            self.para(f"({caption}: not produced by this run)")
            return
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        self.html.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        self.md += [f"![{caption}]({path.relative_to(self.out).as_posix()})", ""]

    def figures(self, items: list[tuple[Path | None, str]]) -> None:
        """Figures in a responsive grid: side by side where the page is wide enough."""
        self.html.append('<div class="figures">')
        for path, caption in items:
            self.image(path, caption)
        self.html.append("</div>")

    def code(self, text: str) -> None:
        self.html.append(f"<pre>{html.escape(text)}</pre>")
        self.md += ["```", text, "```", ""]


_STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #bbb;padding:3px 8px;
text-align:right;white-space:nowrap}th:first-child,td:first-child{text-align:left}th{background:#eee}
img{max-width:100%}figure{margin:0}figcaption{font-size:0.85em;color:#555}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,440px),1fr));
gap:1em 1.5em;align-items:start;margin:0.5em 0 1.5em}
pre{background:#f5f5f5;padding:0.6em;overflow-x:auto}"""


def _with_interval(row: dict, key: str) -> str:
    """``row[key]`` with its 95% interval (``key_lo``, ``key_hi``) to one digit less, e.g.
    ``0.731 [0.71, 0.75]`` or, for an FID, ``24.31 [23.9, 25.0]`` and ``1988 [1993, 2337]``;
    the value alone where the row has no interval."""
    value, lo, hi = row[key], row.get(f"{key}_lo"), row.get(f"{key}_hi")
    digits = 3 if key != "fid" else 2 if value < 100 else 0
    text, less = f"{value:.{digits}f}", max(digits - 1, 0)
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return text
    return f"{text} [{lo:.{less}f}, {hi:.{less}f}]"


def _comparison(s: dict) -> list[str]:
    """A row of the pairwise table: ``a − b`` (precision) at equal ``x``."""
    pair, x = f"{s['a']} − {s['b']}", "FID" if s["x"] == "fid" else s["x"]
    if s["mean_gap"] is None:
        return [pair, x, "none: the curves do not overlap", "-", "-", "-"]
    lo, hi = s["overlap"]
    digits = 2 if s["x"] != "fid" else 1 if hi < 100 else 0
    apart = "-" if s["significant_share"] is None else f"{s['significant_share']:.0%}"
    return [pair, x, f"{lo:.{digits}f} to {hi:.{digits}f}", f"{s['mean_gap']:+.3f}",
            f"{s['a_higher_share']:.0%}", apart]


def grid_caption(grid_psis: list[float], methods: list[str]) -> str:
    psis = ", ".join(f"{p:g}" for p in grid_psis)
    return f"rows: untruncated; then {', '.join(methods)} truncation, each at psi {psis}"


def write_report(out: Path, config: dict, levels: tuple[str, ...]) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into the run directory ``out``."""
    doc = _Doc(out)
    env = environment()
    doc.heading("mlss-jax: multi-level latent space structuring, end to end", 1)
    doc.para(f"Written {time.strftime('%Y-%m-%d %H:%M:%S')} from the run in {out}.")
    doc.heading("Environment")
    doc.table(["item", "value"], [[k, v] for k, v in env.items()])
    doc.heading("Configuration")
    if config.get("preset") == "quick":
        doc.para("This run used the quick schedule (few training steps, few samples): its numbers "
                 "are only indicative. The default schedule gives the documented results.")
    doc.code(json.dumps(config, indent=2))

    layout = RunLayout(out)
    stages = _read_json(layout.stages) or {}
    doc.heading("Timings")
    doc.table(["stage", "seconds"], [[name, f"{s['seconds']:.1f}"] for name, s in stages.items()]
              + [["total", f"{sum(s['seconds'] for s in stages.values()):.1f}"]])

    doc.heading("Levels")
    rows = []
    for level in levels:
        run = _read_json(layout.levels / level / RUN_CONFIG)
        metrics = _read_json(output_path(layout.levels / level, "metrics"))
        if run and metrics:
            k = run["mlss"]["num_clusters"]
            accuracy = metrics.get("classifier_accuracy")
            rows.append([level, ":".join(map(str, run["level_range"])), k, metrics["step"],
                         "-" if accuracy is None else f"{accuracy:.3f}",
                         f"{1 / k:.3f}", metrics.get("eval_samples", 0)])
    doc.table(["level", "ws", "K", "steps", "C_l accuracy", "chance (1/K)", "fresh samples"], rows)
    doc.para("C_l accuracy: how often the level's classifier recovers the cluster a sample was "
             "drawn from; chance is 1/K.")
    report = _read_json(output_path(layout.level_report, "level_report"))
    if report:
        factors = list(report["levels"][0]["nmi"])
        doc.para("Normalised mutual information between each level's cluster index and the "
                 f"ground-truth factors of its images ({report['samples']} samples per level):")
        doc.table(["level", *factors], [[r["level"], *(f"{r['nmi'][f]:.3f}" for f in factors)]
                                        for r in report["levels"]])
    doc.heading("Cluster grids")
    doc.para("One row per cluster of the level; down each column everything else stays fixed.")
    doc.figures([(output_path(layout.control, f"control-{level}"), f"{level} level: one row per cluster")
                 for level in levels]
                + [(output_path(layout.control, "compose-0-0-0"), "composed: cluster 0 at every level")])

    evaluate = layout.evaluate
    sweep = _read_json(output_path(evaluate, "sweep_json"))
    doc.heading("Truncation: multi-level against its peers")
    if sweep:
        doc.para(f"{sweep['samples']} generated samples per psi and {sweep['real_samples']} real "
                 f"images ({sweep['real']}), {sweep['features']} features, k = {sweep['k']}; psi "
                 f"values: {', '.join(f'{p:g}' for p in sweep['psis'])}. With few samples, "
                 "precision and recall differences of a few hundredths are within noise.")
        methods = dict.fromkeys(r["method"] for r in sweep["rows"])
        doc.para("Methods: " + "; ".join(f"{m}: {method_label(m)}" for m in methods) + ".")
        for warning in sweep.get("warnings") or []:   # e.g. too few or repeated real images
            doc.para(f"Warning: {warning}")
    doc.figures([(output_path(evaluate, "pr_curve"), "precision vs recall"),
                 (output_path(evaluate, "precision_fid"), "precision vs FID")])
    if sweep and sweep["summary"]:
        doc.para("Each pair of methods at equal recall and at equal FID: the first method's "
                 "precision minus the second's, interpolated between psi values over the range "
                 "both curves cover; its mean, the share of that range where it is positive, and "
                 "the share where the two 95% intervals do not overlap.")
        by_x = sorted(sweep["summary"], key=lambda s: s["x"] == "fid")   # recall first, then FID
        doc.table(["precision difference", "at equal", "shared range", "mean difference",
                   "positive on", "intervals apart on"], [_comparison(s) for s in by_x])
    settings = output_settings(evaluate, EVALUATE) or {}
    doc.heading("Truncated samples", 3)
    doc.para("The same latents in every column, truncated by each method.")
    doc.image(output_path(evaluate, "truncation_grid"), grid_caption(settings.get("grid_psis", []),
                                                                   settings.get("grid_methods", [])))
    tradeoffs = level_tradeoffs(sweep["rows"]) if sweep else []
    if tradeoffs:
        doc.heading("Per-level truncation", 3)
        doc.para("Multi-level truncation along one level, the others untruncated: the precision it "
                 "buys and the recall it costs from the weakest to the strongest psi.")
        doc.table(["level", "precision gained", "recall lost", "gain per loss"],
                  [[t["level"], f"{t['precision_gain']:+.3f}", f"{t['recall_loss']:+.3f}",
                    "-" if t["gain_per_loss"] is None else f"{t['gain_per_loss']:.2f}"]
                   for t in tradeoffs])
    if sweep:
        keys = [k for k in ("precision", "recall", "fid", "lpips", "faithful") if k in sweep["rows"][0]]
        doc.heading("Faithfulness and quality per psi", 3)
        doc.para("Each value with its 95% interval in brackets, where the sweep measured one. "
                 "faithful: share of samples whose ground-truth factors truncation leaves unchanged "
                 "(demo world); lpips: mean LPIPS between truncated and untruncated images.")
        doc.table(["method", "psi", *keys], [[r["method"], f"{r['psi']:g}",
                                              *(_with_interval(r, k) for k in keys)] for r in sweep["rows"]])

    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>mlss-jax report</title>"
            f"<style>{_STYLE}</style></head><body>" + "\n".join(doc.html) + "</body></html>\n")
    html_path, md_path = out / "report.html", out / "report.md"
    html_path.write_text(page)
    md_path.write_text("\n".join(doc.md))
    return html_path, md_path
