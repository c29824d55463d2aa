"""Recipe configs: a YAML file of ``field: value`` lines, then ``key=value`` overrides, into a recipe dataclass.

Every key must be a field of the recipe (a typo is an error naming the known fields); values are read as
YAML scalars (``lr=1e-6``, ``bf16=true``, ``deepspeed=null``) and checked against the field's default type.
Recipes shipped with the package live in ``train/configs`` and are named without ``.yaml``
(`longlens train grpo love-r1-grpo`). Relative paths inside a config are relative to the working folder.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from longlens._imports import require
from longlens.errors import LongLensError

SHIPPED = Path(__file__).parent / "configs"


def shipped() -> list[str]:
    """Names of the configs that come with the package."""
    return sorted(p.stem for p in SHIPPED.glob("*.yaml"))


def config_path(name: str) -> Path:
    """A path to a YAML file, or the name of a shipped config."""
    path = Path(name)
    if path.is_file():
        return path
    if (SHIPPED / f"{name}.yaml").is_file():
        return SHIPPED / f"{name}.yaml"
    raise LongLensError(f"{name}: no such config file and no shipped config of that name "
                        f"(shipped: {', '.join(shipped())})")


def _read_yaml(path: Path) -> dict:
    yaml = require("yaml", "train", "reading training configs")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise LongLensError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise LongLensError(f"{path}: a config is a mapping of field: value lines")
    return data


def _value(text: str) -> Any:
    yaml = require("yaml", "train", "reading training configs")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _check(cls, key: str, value: Any, where: str, raw: str | None = None) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    if key not in known:
        raise LongLensError(f"{where}: {key!r} is not a setting of {cls.__name__}; known: {', '.join(known)}")
    f = known[key]
    default = f.default if f.default is not dataclasses.MISSING else None
    if isinstance(default, str) and raw is not None:
        return raw  # --set save_strategy=no stays the word "no" (YAML would read a boolean)
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise LongLensError(f"{where}: {key} takes true or false, got {value!r}")
        return value
    if isinstance(default, float) and not isinstance(value, bool) and isinstance(value, int | str):
        try:
            return float(value)  # YAML reads 1e-6 (no dot) as a string
        except ValueError:
            raise LongLensError(f"{where}: {key} takes a number, got {value!r}") from None
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(default, int | float | str) and not isinstance(value, type(default)):
        raise LongLensError(f"{where}: {key} takes a {type(default).__name__}, got {value!r}")
    return value


def load_config(cls, name: str | None = None, overrides: list[str] = ()):
    """`cls` built from the YAML config `name` (a path or a shipped name), then the ``key=value`` overrides."""
    values: dict[str, Any] = {}
    if name:
        path = config_path(name)
        for key, value in _read_yaml(path).items():
            values[key] = _check(cls, str(key), value, str(path))
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise LongLensError(f"--set {item!r}: write key=value")
        values[key.strip()] = _check(cls, key.strip(), _value(text), "--set", text)
    required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING and f.name not in values]
    if required:
        raise LongLensError(f"{cls.__name__}: set {', '.join(required)} (in the config, or --set {required[0]}=...)")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise LongLensError(f"{cls.__name__}: {exc}") from exc


def dump_config(config, path: str | Path) -> None:
    """The resolved config as YAML (written next to the trained model: what exactly was run)."""
    yaml = require("yaml", "train", "writing training configs")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
