"""Where prunelab keeps things, independent of the working directory.

- The cache (`PRUNELAB_HOME`, default `~/.cache/prunelab`): base models trained here (`models/PRESET.pt`) and
  models converted once (later presets).
- Shipped with the package: the `small` base (`prunelab/assets/models/`) and the sweep specs (`prunelab/specs/`,
  also reachable as `sweeps/` in a checkout).
- Relative to where the user runs: sweep storage (`runs/`) and reports (`reports/`), as users of Ray Tune expect.
"""
from __future__ import annotations

import os
from pathlib import Path

from prunelab.errors import PrunelabError

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_MODELS_DIR = PACKAGE_DIR / "assets" / "models"
SPECS_DIR = PACKAGE_DIR / "specs"
HOME_VARIABLE = "PRUNELAB_HOME"


def home() -> Path:
    """The cache folder: $PRUNELAB_HOME, else ~/.cache/prunelab (or $XDG_CACHE_HOME/prunelab)."""
    if os.environ.get(HOME_VARIABLE):
        return Path(os.environ[HOME_VARIABLE]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "prunelab"


def cached_model_path(preset: str) -> Path:
    """Where a base trained here for `preset` is (or will be) cached."""
    return home() / "models" / f"{preset}.pt"


def shipped_model_path(preset: str) -> Path | None:
    """The checkpoint of `preset` that ships with the package, if one does."""
    path = SHIPPED_MODELS_DIR / f"{preset}.pt"
    return path if path.is_file() else None


def shipped_specs() -> dict[str, Path]:
    """Sweep specs shipped with the package, by name (the file name without .yaml)."""
    return {path.stem: path for path in sorted(SPECS_DIR.glob("*.yaml"))}


def resolve_spec(name_or_path: str | Path) -> Path:
    """A sweep spec path as given, or the name of a shipped spec (`demo`, `paper`, ...)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    specs = shipped_specs()
    name = str(name_or_path).removesuffix(".yaml")
    if name in specs and path.parent == Path("."):
        return specs[name]
    if path.parts and path.parts[0] == "sweeps" and path.name.removesuffix(".yaml") in specs and len(path.parts) == 2:
        return specs[path.name.removesuffix(".yaml")]  # `sweeps/demo.yaml` from outside a checkout
    raise PrunelabError(f"sweep spec {name_or_path} does not exist (neither a file nor a shipped spec; "
                        f"shipped: {', '.join(specs)})")
