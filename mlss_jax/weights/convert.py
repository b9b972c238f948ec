"""Convert an NVIDIA network pickle file into a checkpoint directory, with a preview grid."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from mlss_jax.batching import map_in_batches
from mlss_jax.networks.generator import generator_mapping, generator_synthesis
from mlss_jax.networks.sampling import latents
from mlss_jax.viz.grid import save_image_grid
from mlss_jax.weights.checkpoint import check_checkpoint_target, count_params, save_networks
from mlss_jax.weights.nvidia import ConvertedNetworks, convert_network_pickle

PREVIEW_FILE = "preview.png"


@dataclasses.dataclass
class ConversionReport:
    out_dir: Path
    networks: ConvertedNetworks
    preview: Path | None

    def summary_lines(self) -> list[str]:
        nets = self.networks
        g = nets.generator_config
        g_params = nets.generator_vars["params"]
        mapping = count_params({"params": g_params["mapping"]})
        synthesis = count_params({"params": g_params["synthesis"]})
        lines = [
            f"format         {nets.source_format}",
            f"resolution     {g.resolution}x{g.resolution}, {g.img_channels} channels",
            f"latents        z_dim {g.z_dim}, w_dim {g.w_dim}, num_ws {g.num_ws}",
            f"generator      {mapping + synthesis:,} parameters "
            f"(mapping {mapping:,}, synthesis {synthesis:,})",
        ]
        if nets.discriminator_vars is not None:
            lines.append(f"discriminator  {count_params(nets.discriminator_vars):,} parameters")
        lines += [f"note           {n}" for n in nets.notes]
        lines.append(f"wrote          {self.out_dir}/")
        if self.preview is not None:
            lines.append(f"preview        {self.preview}")
        return lines


PREVIEW_BATCH = 4


def preview_images(networks: ConvertedNetworks, num: int, seed: int = 0,
                   on_batch: Callable[[], None] = lambda: None) -> np.ndarray:
    """``num`` samples (psi = 1, constant noise) from the converted generator, in small batches."""
    cfg = networks.generator_config
    z = latents(cfg, num, seed)      # the project's seed convention

    def images(z_batch: np.ndarray) -> np.ndarray:
        ws = generator_mapping(cfg, networks.generator_vars, z_batch)
        out = generator_synthesis(cfg, networks.generator_vars, ws, "const")
        on_batch()
        return out

    return map_in_batches(images, PREVIEW_BATCH, z)


def convert_pickle_file(pkl: str | Path, out_dir: str | Path, *, force: bool = False,
                        preview: int = 16, seed: int = 0) -> ConversionReport:
    """Read ``pkl`` (untrusted), convert G (and D) and write ``out_dir`` atomically."""
    pkl = Path(pkl)
    if not pkl.exists():
        raise FileNotFoundError(f"no such pickle: {pkl}")
    if pkl.is_dir():
        raise IsADirectoryError(f"{pkl} is a directory, not a network pickle")
    out_dir = Path(out_dir)
    check_checkpoint_target(out_dir, force)  # fail before the slow part
    preview_batches = -(-preview // PREVIEW_BATCH)
    with tqdm(total=3 + preview_batches, desc="convert", unit="step", leave=False,
              disable=None) as bar:
        data = pkl.read_bytes()
        bar.update()
        networks = convert_network_pickle(data)
        bar.update()
        bar.set_description("preview")
        images = preview_images(networks, preview, seed, bar.update) if preview > 0 else None
        bar.set_description("write")

        def write_preview(tmp_dir: Path) -> None:
            if images is not None:
                save_image_grid(images, tmp_dir / PREVIEW_FILE)

        metadata = {"source_pickle": str(pkl.resolve()), "source_format": networks.source_format,
                    "source_sha256": hashlib.sha256(data).hexdigest(), "notes": networks.notes}
        written = save_networks(out_dir, generator_config=networks.generator_config,
                                generator_vars=networks.generator_vars,
                                discriminator_config=networks.discriminator_config,
                                discriminator_vars=networks.discriminator_vars,
                                metadata=metadata, force=force, write_extra=write_preview)
        bar.update()
    return ConversionReport(written, networks, written / PREVIEW_FILE if images is not None else None)
