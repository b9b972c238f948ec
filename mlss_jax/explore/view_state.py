"""What the explorer shows, as one value: parsed from and written to a URL query string.

The page keeps its state in its URL; the server reads the same query (or a JSON object of the
same keys) for every image, and ``explore.py render --state`` reads it too, so a link, the page
and the command line all show one image. Keys (levels in the order coarse, medium, fine):

  c   clusters, one per level: ``3,0,7``
  s   each level's draw inside its cluster (a seed): ``11,12,13``
  z   seed of the latent that drives the inputs of no level (the last)
  p   each level's truncation strength toward its cluster's centre: ``0.5,0.8,1``
  m   the strength of the four truncation methods shown side by side
  e   edits, direction:weight pairs in standard deviations: ``pca0:1.5,hue=red:-2``
  l   the inputs the edits move, inclusive: ``2-5`` (default: all)
  bc, bs, bz   a second sample (clusters, draws, seed) to interpolate toward
  t   how far toward it, in [0, 1];  il  along which inputs: ``all`` or a level
  k   locked levels (the page's "new sample" leaves them): ``0,1,0``

Everything is checked here that needs no model (ranges of psi, seeds, weights); the cluster
counts, directions and inputs of a model are checked by :meth:`ViewState.check`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Mapping
from urllib.parse import parse_qsl, urlencode

from mlss_jax.config import SEED_LIMIT
from mlss_jax.errors import ConfigError
from mlss_jax.method.levels import LEVELS
from mlss_jax.method.truncation import check_psi

MAX_EDIT = 10.0      # an edit's weight, in standard deviations of its direction
MAX_EDITS = 16       # edits in one state
KEYS = ("c", "s", "z", "p", "m", "e", "l", "bc", "bs", "bz", "t", "il", "k")


class StateError(ValueError):
    """A state parameter that is malformed or out of range (the message names it)."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """One multi-level sample: a cluster and a draw (seed) per level, and the seed of f(z)."""

    clusters: tuple[int, ...] = (0, 0, 0)
    seeds: tuple[int, ...] = (1, 2, 3)
    base: int = 0

    def __post_init__(self) -> None:
        for name, values in (("clusters", self.clusters), ("seeds", self.seeds)):
            if len(values) != len(LEVELS):
                raise StateError(f"{name} takes one value per level ({len(LEVELS)}), got {len(values)}")
        for value in (*self.seeds, self.base):
            if not 0 <= value < SEED_LIMIT:
                raise StateError(f"seeds lie in 0..{SEED_LIMIT - 1}, got {value}")
        if any(k < 0 for k in self.clusters):
            raise StateError(f"clusters are integers >= 0, got {min(self.clusters)}")


@dataclasses.dataclass(frozen=True)
class ViewState:
    """The explorer's whole state (see the module's docstring for each key)."""

    sample: Sample = Sample()
    psi: tuple[float, ...] = (1.0, 1.0, 1.0)
    method_psi: float = 0.7
    edits: tuple[tuple[str, float], ...] = ()
    layers: tuple[int, int] | None = None
    partner: Sample | None = None
    t: float = 0.0
    along: str = "all"
    locked: tuple[bool, ...] = (False, False, False)

    def __post_init__(self) -> None:
        if len(self.psi) != len(LEVELS):
            raise StateError(f"p takes one strength per level ({len(LEVELS)}), got {len(self.psi)}")
        for name, values in (("p", self.psi), ("m", (self.method_psi,)), ("t", (self.t,))):
            for value in values:
                try:
                    check_psi(value, name)   # t, the interpolation's share, lies in [0, 1] too
                except ConfigError as err:
                    raise StateError(str(err)) from None
        if len(self.edits) > MAX_EDITS:
            raise StateError(f"e lists {len(self.edits)} edits, at most {MAX_EDITS}")
        names = [name for name, _ in self.edits]
        if len(set(names)) < len(names):
            raise StateError("e names a direction twice")
        for name, weight in self.edits:
            if not (math.isfinite(weight) and abs(weight) <= MAX_EDIT):
                raise StateError(f"edit {name} must lie in [-{MAX_EDIT:g}, {MAX_EDIT:g}], got {weight}")
        if self.layers is not None and not 0 <= self.layers[0] <= self.layers[1]:
            raise StateError(f"l must be a range like 2-5, got {self.layers}")
        if self.along not in ("all", *LEVELS):
            raise StateError(f"il must be all or a level ({', '.join(LEVELS)}), got {self.along!r}")
        if len(self.locked) != len(LEVELS):
            raise StateError(f"k takes one 0 or 1 per level, got {len(self.locked)}")

    def check(self, num_clusters: tuple[int, ...], directions: tuple[str, ...], num_ws: int) -> None:
        """The model-dependent checks: clusters below each level's count, known directions,
        edited inputs that exist."""
        for sample, key in ((self.sample, "c"), (self.partner, "bc")):
            for level, k, count in zip(LEVELS, sample.clusters if sample else (), num_clusters):
                if k >= count:
                    raise StateError(f"{key}: {level} cluster {k} is out of range 0..{count - 1}")
        for name, _ in self.edits:
            if name not in directions:
                raise StateError(f"e: unknown direction {name!r} (known: {', '.join(directions)})")
        if self.layers is not None and self.layers[1] >= num_ws:
            raise StateError(f"l: inputs {self.layers[0]}-{self.layers[1]} are outside 0..{num_ws - 1}")


# ---- parsing ---------------------------------------------------------------------------------

def _ints(key: str, text: str, count: int | None = None) -> tuple[int, ...]:
    parts = [part.strip() for part in str(text).split(",")]
    if not all(re.fullmatch(r"\d{1,20}", part) for part in parts):
        raise StateError(f"{key} must be integers >= 0 like 1,2,3, got {text!r}")
    if count is not None and len(parts) != count:
        raise StateError(f"{key} takes {count} values (one per level), got {len(parts)}")
    return tuple(int(part) for part in parts)


def _number(key: str, text) -> float:
    if isinstance(text, bool):
        raise StateError(f"{key} must be a number, got {text!r}")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise StateError(f"{key} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise StateError(f"{key} must be a finite number, got {text!r}")
    return value


def _numbers(key: str, text, count: int) -> tuple[float, ...]:
    parts = str(text).split(",")
    if len(parts) != count:
        raise StateError(f"{key} takes {count} values (one per level), got {len(parts)}")
    return tuple(_number(key, part.strip()) for part in parts)


def _edits(text: str) -> tuple[tuple[str, float], ...]:
    out = []
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        name, sep, weight = part.rpartition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_=\-]{1,40}", name):
            raise StateError(f"e must be direction:weight pairs like pca0:1.5, got {part!r}")
        out.append((name, _number(f"edit {name}", weight)))
    return tuple(out)


def _layers(text: str) -> tuple[int, int] | None:
    if str(text) in ("", "all"):
        return None
    found = re.fullmatch(r"(\d{1,4})(?:-(\d{1,4}))?", str(text).strip())
    if not found:
        raise StateError(f"l must be a range of inputs like 2-5, got {text!r}")
    a, b = int(found.group(1)), int(found.group(2) or found.group(1))
    if a > b:
        raise StateError(f"l: range {text} runs backwards")
    return a, b


def _sample(params: Mapping[str, str], prefix: str, default: Sample) -> Sample:
    n = len(LEVELS)
    clusters = _ints(prefix + "c", params[prefix + "c"], n) if prefix + "c" in params else default.clusters
    seeds = _ints(prefix + "s", params[prefix + "s"], n) if prefix + "s" in params else default.seeds
    base = _ints(prefix + "z", params[prefix + "z"], 1)[0] if prefix + "z" in params else default.base
    return Sample(clusters, seeds, base)


def from_params(params: Mapping[str, object]) -> ViewState:
    """A state from query parameters or a JSON object of the same keys (values as the query
    writes them, or numbers); missing keys take their defaults, unknown keys are refused."""
    unknown = sorted(set(params) - set(KEYS) - {"level"})  # level: the clusters route's
    if unknown:
        raise StateError(f"unknown parameter {unknown[0]!r} (known: {', '.join(KEYS)})")
    params = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in params.items()}
    if any(isinstance(v, (dict, type(None))) for v in params.values()):
        raise StateError("parameters must be numbers or strings like the page's URL")
    n = len(LEVELS)
    default = ViewState()
    sample = _sample(params, "", default.sample)
    partner = _sample(params, "b", sample) if any(f"b{k}" in params for k in "csz") else None
    along = str(params.get("il", "all"))
    return ViewState(
        sample=sample,
        psi=_numbers("p", params["p"], n) if "p" in params else default.psi,
        method_psi=_number("m", params["m"]) if "m" in params else default.method_psi,
        edits=_edits(params.get("e", "")),
        layers=_layers(params.get("l", "")),
        partner=partner,
        t=_number("t", params["t"]) if "t" in params else 0.0,
        along=along,
        locked=tuple(bool(v) for v in _ints("k", params["k"], n)) if "k" in params else default.locked)


def from_query(query: str) -> ViewState:
    """A state from a URL query string (``c=3,0,7&p=0.5,0.8,1``; a leading ``?`` is allowed)."""
    pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    keys = [k for k, _ in pairs]
    if len(set(keys)) < len(keys):
        raise StateError(f"parameter {next(k for k in keys if keys.count(k) > 1)!r} given twice")
    return from_params(dict(pairs))


def params_from_json(body: bytes) -> dict:
    """The parameters in a JSON object (a request's body)."""
    try:
        params = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StateError(f"malformed JSON ({getattr(err, 'msg', err)})") from None
    if not isinstance(params, dict):
        raise StateError("the body must be a JSON object of state parameters")
    return params


def from_json(body: bytes) -> ViewState:
    """A state from a JSON object (a request's body)."""
    return from_params(params_from_json(body))


def _join(values) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(int(v)) for v in values)


def to_query(state: ViewState) -> str:
    """The query string of ``state`` (only what differs from the defaults, in a fixed order)."""
    default = ViewState()
    out: dict[str, str] = {"c": _join(state.sample.clusters), "s": _join(state.sample.seeds),
                           "z": str(state.sample.base)}
    if state.psi != default.psi:
        out["p"] = _join(state.psi)
    if state.method_psi != default.method_psi:
        out["m"] = f"{state.method_psi:g}"
    if state.edits:
        out["e"] = ",".join(f"{name}:{weight:g}" for name, weight in state.edits)
    if state.layers is not None:
        out["l"] = f"{state.layers[0]}-{state.layers[1]}"
    if state.partner is not None:
        out |= {"bc": _join(state.partner.clusters), "bs": _join(state.partner.seeds),
                "bz": str(state.partner.base), "t": f"{state.t:g}", "il": state.along}
    if any(state.locked):
        out["k"] = _join(state.locked)
    return urlencode(out, safe=",:=-")
