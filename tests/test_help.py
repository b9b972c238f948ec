"""Every command lists its flags with ``--help`` (exit 0), as the README promises."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

SCRIPTS = sorted(["train.py", "evaluate.py", "explore.py", "run.py",
                  *(str(p.relative_to(REPO)) for folder in ("convert", "tools", "benchmarks", "experiments")
                    for p in (REPO / folder).glob("*.py") if not p.name.startswith("_"))])

# One interpreter runs every script's --help in turn (runpy, as ``python SCRIPT --help``
# would), so that the test pays for importing jax once.
DRIVER = """
import contextlib, io, json, os, runpy, sys
results = {}
for script in sys.argv[1:]:
    out = io.StringIO()
    sys.argv = [script, "--help"]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))  # as python SCRIPT would
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as exit_:
            code = exit_.code
        except Exception as err:
            code = f"{type(err).__name__}: {err}"
    sys.path.pop(0)
    results[script] = [code, out.getvalue()]
print(json.dumps(results))
"""


def test_every_command_prints_its_help():
    assert {"convert/from_pkl.py", "tools/train_stylegan2.py", "benchmarks/run_all.py"} <= set(SCRIPTS)
    proc = subprocess.run([sys.executable, "-c", DRIVER, *SCRIPTS], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    failed = {script: code for script, (code, _) in results.items() if code not in (0, None)}
    assert not failed
    for script, (_, text) in results.items():
        assert text.startswith("usage: "), (script, text[:200])
    # help text with a literal % sign (argparse reads % as a format code unless escaped)
    assert "FID's 95% interval" in " ".join(results["evaluate.py"][1].split())
