"""PNG plots: the truncation sweep's precision-recall and precision-FID curves, t-SNE maps."""

from __future__ import annotations

from pathlib import Path

LABELS = {"stylegan": "StyleGAN truncation", "cutoff": "StyleGAN, coarse inputs only",
          "multimodal": "multi-modal truncation", "multilevel": "multi-level truncation"}


def method_label(method: str) -> str:
    """What a method of the sweep is, in words: ``multilevel:fine`` -> multi-level truncation
    (fine only)."""
    base, _, level = method.partition(":")
    return LABELS.get(base, base) + (f" ({level} only)" if level else "")


def sweep_plot(rows: list[dict], x: str, path: str | Path, title: str) -> Path:
    """Precision against ``x`` ('recall' or 'fid') for every method in the rows, with the 95%
    interval of precision as a bar where the rows have one; psi is written beside the points where it fits
    (each curve's ends first), and the legend sits below the axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patheffects import withStroke
    from matplotlib.transforms import Bbox

    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=120, layout="constrained")
    psi_labels = []  # (is not an end of its curve, label)
    for method in dict.fromkeys(r["method"] for r in rows):
        pts = sorted((r["psi"], r[x], r["precision"], r.get("precision_lo"), r.get("precision_hi"))
                     for r in rows if r["method"] == method)
        xs, ys = [p[1] for p in pts], [p[2] for p in pts]
        line, = ax.plot(xs, ys, marker="o", markersize=3, label=method_label(method))
        if all(p[3] is not None for p in pts):   # bars: a band folds where x turns back
            ax.vlines(xs, [p[3] for p in pts], [p[4] for p in pts], color=line.get_color(),
                      alpha=0.4, linewidth=2.5)
        for i, (psi, xv, yv, *_) in enumerate(pts):
            text = ax.annotate(f"{psi:g}", (xv, yv), textcoords="offset points", xytext=(3, 3),
                               fontsize=7, color=line.get_color(),
                               path_effects=[withStroke(linewidth=2, foreground="white")])
            text.set_in_layout(False)
            psi_labels.append((0 < i < len(pts) - 1, text))
    ax.set_xlabel({"recall": "recall", "fid": "FID (lower is better)"}[x])
    ax.set_ylabel("precision")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False,
               title="numbers beside the points: psi", title_fontsize=8)
    fig.canvas.draw()  # lay the figure out, so that the labels' extents are final
    points = [Bbox.from_bounds(px - 3, py - 3, 6, 6)
              for line in ax.lines for px, py in ax.transData.transform(line.get_xydata())]
    _hide_overlapping([text for _, text in sorted(psi_labels, key=lambda t: t[0])], points)
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def _hide_overlapping(texts: list, obstacles: list) -> None:
    """Hide each text that would overlap an obstacle (a display box) or a text shown before it."""
    shown = list(obstacles)
    for text in texts:
        box = text.get_window_extent()
        if any(box.overlaps(other) for other in shown):
            text.set_visible(False)
        else:
            shown.append(box)


def tsne_plot(embeddings: list, path: str | Path) -> Path:
    """One row per level (:class:`mlss_jax.explore.toolkit.LevelEmbedding`): t-SNE of the level's own latents
    and of the same samples mapped into W, coloured by Gaussian; and of the generator's W
    samples, coloured by the cluster C_l assigns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(embeddings), 3, figsize=(11, 3.6 * len(embeddings)), dpi=110,
                             squeeze=False)
    for row, emb in zip(axes, embeddings, strict=True):
        panels = ((emb.z_tsne, emb.clusters, "mixture latents z, by Gaussian"),
                  (emb.mapped_tsne, emb.clusters, "M_l(z) in W, by Gaussian"),
                  (emb.w_tsne, emb.assigned, "f(z) in W, by C_l's cluster"))
        for ax, (points, colour, title) in zip(row, panels, strict=True):
            ax.scatter(points[:, 0], points[:, 1], c=colour, cmap="tab10", s=4)
            ax.set_title(f"{emb.level}: {title}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
