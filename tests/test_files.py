"""Files written whole or not at all (``mlss_jax.runtime.files``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlss_jax.runtime.files import write_atomic


def test_a_file_is_replaced_whole_or_kept_as_it_was(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    assert write_atomic(target, "old") == target
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]

    def part_then_interrupted(self, data):       # Ctrl-C while the new text is half written
        with open(self, "w") as f:
            f.write(data[:2])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", part_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "newer")
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]
