"""`python convert/from_pkl.py`: one-line errors, non-zero exits, nothing half-written."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, fixture_path, run_script
from mlss_jax import load_generator
from pickles import add_param, dump_pt, dump_tf, pt_fixture, tf_fixture


def convert(pkl, out, *extra):
    return run_script("convert/from_pkl.py", "--pkl", str(pkl), "--out", str(out), *extra)


def assert_one_line_error(code, stderr, pattern):
    assert code != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert pattern in lines[0], lines[0]


def assert_nothing_written(tmp_path, out):
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary dir left"


def _tf_with(**static_kwargs) -> bytes:
    nets = tf_fixture()
    gs = nets[2]
    gs.static_kwargs.update(static_kwargs)
    return dump_tf(nets)


def _tf_stylegan1() -> bytes:
    nets = tf_fixture()
    nets[2].components["synthesis"].build_func_name = "G_synthesis"
    return dump_tf(nets)


def _pt_stylegan3() -> bytes:
    obj = pt_fixture()
    add_param(obj["G_ema"].state["_modules"]["synthesis"], "input.affine.weight",
              np.zeros((4, 32), np.float32))
    return dump_pt(obj)


def _pt_conditional() -> bytes:
    obj = pt_fixture()
    obj["G_ema"].state["c_dim"] = 10
    return dump_pt(obj)


def _pt_resnet_generator() -> bytes:
    obj = pt_fixture()
    obj["G_ema"].state["_modules"]["synthesis"].state["_modules"]["b8"].state["architecture"] = "resnet"
    return dump_pt(obj)


@pytest.mark.parametrize("make, message", [
    (lambda: b"", "not a network pickle: the file is empty"),
    (lambda: b"this is not a pickle at all", "not a network pickle: the file does not begin like"),
    (lambda: (REPO / "assets" / "demo" / "samples.png").read_bytes(),
     "not a network pickle: the file is a PNG image"),
    (lambda: fixture_path("tf_small.pkl").read_bytes()[:100_000], "corrupt or truncated"),
    (lambda: pickle.dumps({"weights": [1, 2, 3]}), "not a StyleGAN2 network pickle"),
    (lambda: pickle.dumps(print), "refused global builtins.print"),
    (lambda: _tf_with(architecture="resnet"), "architecture 'resnet'"),
    (lambda: _tf_with(architecture="orig"), "architecture 'orig'"),
    (lambda: _tf_with(label_size=10), "conditional model with labels"),
    (_tf_stylegan1, "synthesis network 'G_synthesis'"),
    (_pt_stylegan3, "StyleGAN3"),
    (_pt_conditional, "conditional model with labels"),
    (_pt_resnet_generator, "architecture 'resnet'"),
], ids=["empty", "text", "png", "truncated", "neither-format", "hostile", "tf-resnet-G", "tf-orig-G",
        "tf-conditional", "tf-stylegan1", "pt-stylegan3", "pt-conditional", "pt-resnet-G"])
def test_bad_pickles_give_one_line_errors(tmp_path, make, message):
    pkl = tmp_path / "in.pkl"
    pkl.write_bytes(make())
    out = tmp_path / "out"
    code, _, stderr = convert(pkl, out)
    assert_one_line_error(code, stderr, message)
    pkl.unlink()
    assert_nothing_written(tmp_path, out)


def test_missing_file_and_directory(tmp_path):
    code, _, stderr = convert(tmp_path / "nope.pkl", tmp_path / "out")
    assert_one_line_error(code, stderr, "no such pickle")
    code, _, stderr = convert(tmp_path, tmp_path / "out")
    assert_one_line_error(code, stderr, "is a directory")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_unsupported_discriminator_keeps_the_generator(tmp_path):
    nets = tf_fixture()
    nets[1].static_kwargs["architecture"] = "skip"
    pkl = tmp_path / "in.pkl"
    pkl.write_bytes(dump_tf(nets))
    code, stdout, _ = convert(pkl, tmp_path / "out")
    assert code == 0
    assert "discriminator not converted" in stdout
    assert load_generator(tmp_path / "out").resolution == 32
    from mlss_jax import load_discriminator
    from mlss_jax.weights.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match="no discriminator"):
        load_discriminator(tmp_path / "out")


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "out"
    assert convert(fixture_path("tf_small.pkl"), out, "--preview", "0")[0] == 0
    code, _, stderr = convert(fixture_path("pt_small.pkl"), out, "--preview", "0")
    assert_one_line_error(code, stderr, "already exists (use --force")
    assert load_generator(out).resolution == 32

    code, stdout, _ = convert(fixture_path("pt_small.pkl"), out, "--force", "--preview", "0")
    assert code == 0
    assert not (out / "preview.png").exists()
    assert load_generator(out).resolution == 16
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("target", ["user folder", "file", "training run", "symlink"])
def test_force_replaces_only_a_checkpoint_it_wrote(tmp_path, target):
    """--force never deletes what the project did not write: a folder of the user's, a file,
    a link, or another kind of output (a training run); one line, nothing changed."""
    out = tmp_path / "out"
    if target == "user folder":
        out.mkdir()
        (out / "thesis.tex").write_text("user data")
        (out / "config.json").write_text("{}")     # even with a file of a checkpoint's name
    elif target == "file":
        out.write_text("user data")
    elif target == "training run":
        out.mkdir()
        (out / "config.json").write_text("{}")
        (out / ".mlss-jax").write_text('{"written_by": "mlss-jax", "kind": "run"}')
    else:
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "data.txt").write_text("user data")
        out.symlink_to(tmp_path / "elsewhere")
    before = _snapshot(tmp_path)
    code, _, stderr = convert(fixture_path("pt_small.pkl"), out, "--force", "--preview", "0")
    expected = {"user folder": "was not written by mlss-jax", "file": "is a file",
                "training run": "holds a run", "symlink": "is a link"}[target]
    assert_one_line_error(code, stderr, expected)
    assert "--force replaces only a checkpoint directory" in stderr
    assert _snapshot(tmp_path) == before


@pytest.mark.slow
def test_force_replaces_a_checkpoint_written_before_marker_files(tmp_path):
    out = tmp_path / "out"
    assert convert(fixture_path("tf_small.pkl"), out, "--preview", "2")[0] == 0
    (out / ".mlss-jax").unlink()      # as an older version wrote it
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "preview.png", "variables"]
    assert convert(fixture_path("pt_small.pkl"), out, "--force", "--preview", "0")[0] == 0
    assert load_generator(out).resolution == 16 and (out / ".mlss-jax").is_file()


def test_failed_force_leaves_the_old_checkpoint(tmp_path):
    out = tmp_path / "out"
    assert convert(fixture_path("pt_small.pkl"), out, "--preview", "0")[0] == 0
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"garbage")
    code, _, _ = convert(bad, out, "--force")
    assert code == 1
    assert load_generator(out).resolution == 16


def test_summary_lists_format_and_counts(tmp_path):
    code, stdout, _ = convert(fixture_path("tf_small.pkl"), tmp_path / "out")
    assert code == 0
    assert "format         tensorflow" in stdout
    assert "num_ws 8" in stdout
    assert "generator      374,787 parameters (mapping 33,280, synthesis 341,507)" in stdout
    assert f"preview        {tmp_path / 'out' / 'preview.png'}" in stdout


@pytest.mark.parametrize("args, message", [
    (["--pkl", "x.pkl", "--out", "o", "--bogus"], "unrecognized arguments: --bogus"),
    (["--pkl", "x", "--out", "o", "--preview", "-1"], "--preview must be in 0..1024"),
    (["--pkl", "x", "--out", "o", "--preview", "100000000"], "--preview must be in 0..1024"),
    (["--pkl", "x", "--out", "o", "--seed", "-5"], "argument --seed: seeds lie in"),
])
def test_bad_flags(args, message):
    code, _, stderr = run_script("convert/from_pkl.py", *args)
    assert code == 2
    assert_one_line_error(code, stderr, message)


def test_real_process_exit_codes_and_no_traceback(tmp_path):
    """The same through a real interpreter, as a user runs it."""
    hostile = tmp_path / "hostile.pkl"
    hostile.write_bytes(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueR.")
    proc = subprocess.run([sys.executable, "convert/from_pkl.py", "--pkl", str(hostile), "--out",
                           str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "from_pkl.py: error: refused global os.system"
    assert not (tmp_path / "out").exists()


def test_pytorch_conv_clamp_is_read(tmp_path):
    from mlss_jax.weights.nvidia import convert_network_pickle

    obj = pt_fixture()

    def set_clamp(module):
        if "conv_clamp" in module.state:
            module.state["conv_clamp"] = 256
        for child in module.state["_modules"].values():
            set_clamp(child)

    set_clamp(obj["G_ema"])
    set_clamp(obj["D"])
    converted = convert_network_pickle(dump_pt(obj))
    assert converted.generator_config.conv_clamp == 256.0
    assert converted.discriminator_config.conv_clamp == 256.0
