"""PNG plots of the truncation sweep: precision-recall and precision-FID curves."""

from __future__ import annotations

from pathlib import Path

LABELS = {"stylegan": "StyleGAN truncation", "multilevel": "multi-level truncation"}


def sweep_plot(rows: list[dict], x: str, path: str | Path, title: str) -> Path:
    """Precision against ``x`` ('recall' or 'fid') for both methods, psi written at each point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=120)
    for method, label in LABELS.items():
        pts = sorted((r["psi"], r[x], r["precision"]) for r in rows if r["method"] == method)
        if not pts:
            continue
        xs, ys = [p[1] for p in pts], [p[2] for p in pts]
        ax.plot(xs, ys, marker="o", label=label)
        for psi, xv, yv in pts:
            ax.annotate(f"{psi:g}", (xv, yv), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_xlabel({"recall": "recall", "fid": "FID (lower is better)"}[x])
    ax.set_ylabel("precision")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
