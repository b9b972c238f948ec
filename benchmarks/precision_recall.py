"""Precision/recall speed: the blocked JAX implementation against straightforward NumPy.

    python benchmarks/precision_recall.py                       # 10k and 50k, D = 512 and 4096
    python benchmarks/precision_recall.py --sizes 10000x512 --json out.json
    python benchmarks/precision_recall.py --sizes 10000x4096 --columns 1024 --no-numpy

For each N x D, two sets of N Gaussian features (the "fake" one shifted) are
compared with k = 3. JAX: the jitted passes of ``metrics.precision_recall`` (k-NN
radii of both sets, then manifold membership both ways in one pass over the
fake-to-real distances, ``mutual_membership``) on tiles of 1024 rows x
``--columns`` columns, compiled ahead of time (compile s), then run (jax s);
"membership s" is the pass both ways, "two passes s" the same membership as two
one-way passes (``in_manifold``, how it was computed before), whose results must
be identical. NumPy: the same definition in float32, one block of rows of the
distance matrix at a time (the full matrix of 50k x 50k would need 10 GB),
``np.partition`` for the k-th neighbour. Both must give the same precision and
recall up to float rounding at ball boundaries (printed).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mlss_jax.metrics.precision_recall import in_manifold, knn_radii, mutual_membership

K = 3
BLOCK = 1024


def numpy_sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] - 2.0 * (a @ b.T) + (b * b).sum(1)[None, :], 0.0)


def numpy_radii(x: np.ndarray, k: int, rows: int) -> np.ndarray:
    out = np.empty(len(x), np.float32)
    for i in tqdm(range(0, len(x), rows), desc="  numpy radii", leave=False):
        d = numpy_sq_distances(x[i:i + rows], x)
        out[i:i + rows] = np.sqrt(np.partition(d, k, axis=1)[:, k])  # index k: self is at 0
    return out


def numpy_inside(queries: np.ndarray, support: np.ndarray, radii: np.ndarray, rows: int) -> np.ndarray:
    out = np.empty(len(queries), bool)
    r2 = np.square(radii)[None, :]
    for i in tqdm(range(0, len(queries), rows), desc="  numpy membership", leave=False):
        out[i:i + rows] = np.any(numpy_sq_distances(queries[i:i + rows], support) <= r2, axis=1)
    return out


def numpy_precision_recall(real: np.ndarray, fake: np.ndarray, k: int, rows: int = 1000):
    real_r, fake_r = numpy_radii(real, k, rows), numpy_radii(fake, k, rows)
    return (float(numpy_inside(fake, real, real_r, rows).mean()),
            float(numpy_inside(real, fake, fake_r, rows).mean()))


def bench(n: int, dim: int, columns: int, with_numpy: bool) -> dict:
    rng = np.random.default_rng(0)
    real = rng.standard_normal((n, dim), dtype=np.float32)
    fake = (rng.standard_normal((n, dim), dtype=np.float32) + 0.05).astype(np.float32)
    real_j, fake_j = jnp.asarray(real), jnp.asarray(fake)
    zeros = jnp.zeros(n)
    start = time.perf_counter()  # ahead-of-time compilation of the jitted passes
    radii = knn_radii.lower(real_j, K, BLOCK, columns).compile()
    both_ways = mutual_membership.lower(fake_j, real_j, zeros, zeros, BLOCK, columns).compile()
    row = {"n": n, "dim": dim, "k": K, "block": BLOCK, "columns": columns,
           "compile_s": time.perf_counter() - start}
    one_way = in_manifold.lower(fake_j, real_j, zeros, BLOCK, columns).compile()
    start = time.perf_counter()  # what metrics.precision_recall runs, on the compiled passes
    real_r, fake_r = jax.block_until_ready((radii(real_j), radii(fake_j)))
    radii_s = time.perf_counter() - start
    fake_in_real, real_in_fake = both_ways(fake_j, real_j, fake_r, real_r)
    precision, recall = float(jnp.mean(fake_in_real)), float(jnp.mean(real_in_fake))
    row.update(jax_s=time.perf_counter() - start, membership_s=time.perf_counter() - start - radii_s,
               precision=precision, recall=recall)
    start = time.perf_counter()
    before = (one_way(fake_j, real_j, real_r), one_way(real_j, fake_j, fake_r))
    jax.block_until_ready(before)
    row["two_passes_s"] = time.perf_counter() - start
    row["identical"] = bool(jnp.all(before[0] == fake_in_real) and jnp.all(before[1] == real_in_fake))
    if with_numpy:
        start = time.perf_counter()
        row["numpy_precision"], row["numpy_recall"] = numpy_precision_recall(real, fake, K)
        row["numpy_s"] = time.perf_counter() - start
    return row


def parse_sizes(text: str) -> list[tuple[int, int]]:
    try:
        sizes = [tuple(int(v) for v in part.split("x")) for part in text.split(",")]
    except ValueError:
        raise SystemExit(f"--sizes: expected NxD,NxD..., got {text!r}") from None
    if any(len(s) != 2 or min(s) <= K for s in sizes):
        raise SystemExit(f"--sizes: expected NxD,NxD... with N > {K}, got {text!r}")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000x512,10000x4096,50000x512,50000x4096",
                        help="comma-separated NxD (default: 10k and 50k, D = 512 and 4096)")
    parser.add_argument("--columns", type=int, default=8192,
                        help="support samples per distance tile (default: the library's 8192)")
    parser.add_argument("--no-numpy", action="store_true", help="time the JAX implementation only")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    if args.columns < 1:
        raise SystemExit(f"--columns: expected a positive number, got {args.columns}")
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} x{jax.device_count()}, k = {K}, "
          f"tiles {BLOCK} x {args.columns}")
    print(f"{'N':>6} {'D':>5} {'compile s':>9} {'jax s':>8} {'membership s':>12} "
          f"{'two passes s':>12} {'identical':>9} {'numpy s':>8} {'speed-up':>8} "
          f"{'precision':>9} {'recall':>7} {'numpy P/R':>13}")
    rows = []
    for n, dim in parse_sizes(args.sizes):
        row = bench(n, dim, args.columns, not args.no_numpy)
        rows.append(row)
        numpy_s = row.get("numpy_s", float("nan"))
        numpy_pr = (f"{row['numpy_precision']:.4f}/{row['numpy_recall']:.4f}" if "numpy_s" in row
                    else "-")
        print(f"{n:>6} {dim:>5} {row['compile_s']:>9.2f} {row['jax_s']:>8.2f} "
              f"{row['membership_s']:>12.2f} {row['two_passes_s']:>12.2f} "
              f"{str(row['identical']):>9} {numpy_s:>8.2f} "
              f"{numpy_s / row['jax_s']:>7.1f}x {row['precision']:>9.4f} {row['recall']:>7.4f} "
              f"{numpy_pr:>13}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
