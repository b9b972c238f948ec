"""Statistics of a sweep's rows: two methods' precision compared at equal recall or FID, and
what each level's own truncation buys."""

from __future__ import annotations

import numpy as np


def level_tradeoffs(rows: list[dict]) -> list[dict]:
    """For each per-level sweep in the rows: the precision gained and the recall lost between its
    weakest and strongest truncation (psi max -> psi min), and their ratio."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows if r["method"].startswith("multilevel:")):
        series = sorted((r["psi"], r["precision"], r["recall"]) for r in rows if r["method"] == method)
        (_, p_strong, r_strong), (_, p_weak, r_weak) = series[0], series[-1]
        gain, loss = p_strong - p_weak, r_weak - r_strong
        out.append({"level": method.partition(":")[2], "precision_gain": gain, "recall_loss": loss,
                    "gain_per_loss": gain / loss if loss > 0 else None})
    return out


def _curve(rows: list[dict], method: str, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    pts = sorted((r[x], r[y]) for r in rows if r["method"] == method)
    return np.asarray([p[0] for p in pts]), np.asarray([p[1] for p in pts])


def compare_at_equal(rows: list[dict], x: str, a: str = "multilevel", b: str = "stylegan") -> dict:
    """Mean precision gap (a - b) at equal ``x`` (recall or fid), by interpolation.

    Each method's precision (and its interval, where the rows have one) is linearly
    interpolated as a function of ``x`` over its psi points, on the range of ``x`` both cover.
    ``a_higher_share``: where a's precision is higher; ``significant_share``: where the two
    intervals do not overlap.
    """
    ca, cb = _curve(rows, a, x, "precision"), _curve(rows, b, x, "precision")
    if not len(ca[0]) or not len(cb[0]):
        return {"overlap": None, "mean_gap": None, "a_higher_share": None, "significant_share": None}
    lo, hi = max(ca[0].min(), cb[0].min()), min(ca[0].max(), cb[0].max())
    if hi <= lo:
        return {"overlap": None, "mean_gap": None, "a_higher_share": None, "significant_share": None}
    grid = np.linspace(lo, hi, 50)
    gap = np.interp(grid, *ca) - np.interp(grid, *cb)
    result = {"overlap": [float(lo), float(hi)], "mean_gap": float(gap.mean()),
              "a_higher_share": float(np.mean(gap > 0)), "significant_share": None}
    if all("precision_lo" in r for r in rows) and not any(np.isnan(r["precision_lo"]) for r in rows):
        band = lambda m, y: np.interp(grid, *_curve(rows, m, x, y))
        apart = (band(a, "precision_lo") > band(b, "precision_hi")) | \
            (band(b, "precision_lo") > band(a, "precision_hi"))
        result["significant_share"] = float(np.mean(apart))
    return result


def pairwise_summary(rows: list[dict]) -> list[dict]:
    """For each pair of methods in the rows, :func:`compare_at_equal` at equal recall and FID."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    return [{"a": a, "b": b, "x": x, **compare_at_equal(rows, x, a, b)}
            for i, a in enumerate(methods) for b in methods[i + 1:] for x in ("recall", "fid")]
