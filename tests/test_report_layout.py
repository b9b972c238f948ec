"""What a reader of the report sees: labelled image grids, sweep plots whose legend and psi
labels cover nothing, intervals in the per-psi table, named differences, and figures side by
side at 1280 px (rendered in headless Chromium). A small run directory is made by hand."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from mlss_jax.app.evaluate import PRODUCER as EVALUATE
from mlss_jax.app.manifest import record_outputs
from mlss_jax.method.levels import LEVELS
from mlss_jax.viz.grid import label_grid, save_image_grid
from mlss_jax.viz.plots import sweep_plot


def test_grid_labels_sit_in_bands_beside_an_unchanged_grid(tmp_path):
    images = np.random.default_rng(0).uniform(-1, 1, (6, 32, 32, 3))
    bare = np.asarray(Image.open(save_image_grid(images, tmp_path / "bare.png", ncols=3)))
    rows, cols = ["cluster 0", "cluster 1"], ["sample 1", "sample 2", "sample 3"]
    labelled = np.asarray(Image.open(save_image_grid(images, tmp_path / "labelled.png", ncols=3,
                                                     row_labels=rows, col_labels=cols)))
    top, left = labelled.shape[0] - bare.shape[0], labelled.shape[1] - bare.shape[1]
    assert top > 10 and left > 30
    np.testing.assert_array_equal(labelled[top:, left:], bare)
    # text, dark, at each row's height in the left band and over each column in the top band
    cell, pad = 64, 4   # 32 px shown 2x, 2 px padding shown 2x
    for r in range(len(rows)):
        y = top + pad + r * (cell + pad) + cell // 2
        assert labelled[y - 4:y + 4, :left].min() < 100, r
    for c in range(len(cols)):
        x = left + pad + c * (cell + pad) + cell // 2
        assert labelled[:top, x - 4:x + 4].min() < 100, c
    assert labelled[top:, :left][labelled.shape[0] - top - 3:].min() == 255  # below the last row
    with pytest.raises(ValueError, match="3 row labels for a grid of 2 rows"):
        label_grid(Image.fromarray(bare), (cell, cell), pad, rows + ["cluster 2"])


def _rows(methods=("stylegan", "cutoff", "multilevel"), psis=np.linspace(0, 1, 11)):
    rows = []
    for i, method in enumerate(methods):
        for psi in psis:
            precision = 0.9 - 0.3 * psi + 0.01 * i
            rows.append({"method": method, "psi": round(float(psi), 2), "precision": precision,
                         "recall": 0.1 + 0.7 * psi, "fid": 30 - 20 * psi + i,
                         "precision_lo": precision - 0.03, "precision_hi": precision + 0.03,
                         "recall_lo": 0.05 + 0.7 * psi, "recall_hi": 0.15 + 0.7 * psi,
                         "fid_lo": 29 - 20 * psi + i, "fid_hi": 31 - 20 * psi + i})
    return rows


@pytest.mark.parametrize("x", ["recall", "fid"])
def test_sweep_plot_legend_is_off_the_axes_and_psi_labels_do_not_collide(tmp_path, monkeypatch, x):
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure sweep_plot closes
    sweep_plot(_rows(), x, tmp_path / "plot.png", "precision")
    fig = figures[0]
    ax, legend = fig.axes[0], fig.legends[0]
    assert not legend.get_window_extent().overlaps(ax.get_window_extent())
    shown = [t for t in ax.texts if t.get_visible()]
    boxes = [t.get_window_extent() for t in shown]
    assert all(not a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert 3 <= len(shown) < len(ax.texts)   # crowded curves: some psi values, not all
    plt.close(fig)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from mlss_jax.app.report import write_report

    out = tmp_path_factory.mktemp("run")
    rows = _rows()
    rows[1].update(precision=0.731, precision_lo=0.7123, precision_hi=0.7508)
    rows[2].update(precision_lo=float("nan"), precision_hi=float("nan"))
    evaluate, control = out / "evaluate", out / "control"
    evaluate.mkdir()
    control.mkdir()
    summary = [{"a": "stylegan", "b": "cutoff", "x": "recall", "overlap": [0.1, 0.8],
                "mean_gap": -0.049, "a_higher_share": 0.25, "significant_share": 0.0}]
    sweep = {"samples": 40, "real_samples": 40, "real": "shapes", "features": "demo", "k": 3,
             "psis": [0, 1], "rows": rows, "summary": summary,
             "warnings": ["--real gives 40 images, 38 of them copies of others"]}
    (evaluate / "sweep.json").write_text(json.dumps(sweep))
    image = np.zeros((8, 32, 32, 3))
    files = {"sweep_json": evaluate / "sweep.json",
             "pr_curve": sweep_plot(rows, "recall", evaluate / "pr_curve.png", "precision vs recall"),
             "precision_fid": sweep_plot(rows, "fid", evaluate / "precision_fid.png", "precision vs FID"),
             "truncation_grid": save_image_grid(image, evaluate / "truncation_grid.png", ncols=4)}
    record_outputs(evaluate, EVALUATE, files, {"grid_psis": [0.7], "grid_methods": ["stylegan"]})
    names = [f"control-{level}" for level in LEVELS] + ["compose-0-0-0"]
    record_outputs(control, "explore control",
                   {name: save_image_grid(image, control / f"{name}.png", ncols=4) for name in names})
    write_report(out, {}, LEVELS)
    return out


def test_per_psi_table_shows_each_interval_in_html_and_markdown(report):
    page, md = (report / "report.html").read_text(), (report / "report.md").read_text()
    for text in (page, md):
        assert "0.731 [0.71, 0.75]" in text          # precision of stylegan at psi 0.1
        assert "0.800 [0.75, 0.85]" in text          # ... its recall (0.1 + 0.7 * 1)
    row = re.search(r"<tr><td>stylegan</td><td>0\.2</td>(.*?)</tr>", page).group(1)
    assert re.match(r"<td>0\.840</td><td>0\.240 \[0\.19, 0\.29\]</td>", row), row  # no interval: bare


def test_a_warning_about_the_real_images_reaches_the_report(report):
    for page in ((report / "report.html").read_text(), (report / "report.md").read_text()):
        assert "Warning: --real gives 40 images, 38 of them copies of others" in page


def test_pairwise_difference_names_which_method_is_subtracted(report):
    page, md = (report / "report.html").read_text(), (report / "report.md").read_text()
    assert "<tr><td>stylegan − cutoff</td><td>recall</td><td>0.10 to 0.80</td><td>-0.049</td>" in page
    assert "| stylegan − cutoff | recall | 0.10 to 0.80 | -0.049 | 25% | 0% |" in md
    assert "stylegan: StyleGAN truncation; cutoff: StyleGAN, coarse inputs only" in page  # the keys


def test_figures_sit_in_grid_containers(report):
    page = (report / "report.html").read_text()
    containers = re.findall(r'<div class="figures">(.*?)</div>', page, re.S)
    assert [c.count("<figure>") for c in containers] == [4, 2]
    assert page.count("<figure>") == 7   # and the truncation grid, alone


def test_figures_pair_up_at_1280_px_in_chromium(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium package is required (apt-get install chromium)"
    # once loaded, record each figure container's figures' (left, top)
    probe = ("<script>window.addEventListener('load',()=>{document.body.setAttribute('data-pos',"
             "JSON.stringify([...document.querySelectorAll('.figures')].map(d=>[...d.children]"
             ".map(f=>[Math.round(f.getBoundingClientRect().left),"
             "Math.round(f.getBoundingClientRect().top)]))));});</script>")
    page = (report / "report.html").read_text().replace("</body>", probe + "</body>")
    (tmp_path / "probe.html").write_text(page)
    result = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                             "--window-size=1280,2000", "--virtual-time-budget=5000", "--dump-dom",
                             (tmp_path / "probe.html").as_uri()], capture_output=True, text=True,
                            timeout=120)
    found = re.search(r'data-pos="([^"]+)"', result.stdout)
    assert found, result.stderr[-2000:]
    grids = json.loads(found.group(1).replace("&quot;", '"'))
    assert [len(figures) for figures in grids] == [4, 2], grids
    for figures in grids:   # two per row: the same top, side by side
        for left, right in zip(figures[::2], figures[1::2]):
            assert left[1] == right[1] and left[0] < right[0], grids
