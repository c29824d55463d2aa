"""Recipe configs: a YAML file of ``field: value`` lines, then ``key=value`` overrides, into a recipe dataclass.

A recipe holds only its own settings (paths, frames, the agent's loop, reward weights). TRL's optimisation
settings pass through whole in the ``trl:`` mapping to TRL's own config class (`GRPOConfig` or `SFTConfig`,
named by the recipe's ``TRL`` attribute), over the reference's values the recipe states (``TRL_DEFAULTS``):
any TRL option works without a copy here (``--set trl.learning_rate=2e-6``, ``--set trl.save_steps=50``).

Every key must be a field of the recipe, or of TRL's config after ``trl.`` (a typo is an error naming the known
fields, and TRL's version); values are read as YAML scalars (``1e-6``, ``true``, ``null``) and checked against
the field's default type. Recipes shipped with the package live in ``train/configs`` and are named without
``.yaml`` (`longlens train grpo love-r1-grpo`). Relative paths inside a config are relative to the working folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import types
import typing
from collections.abc import Mapping
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


@functools.cache
def trl_fields(name: str) -> dict[str, Any] | None:
    """The fields of TRL's config class `name` with their defaults; None when TRL is not installed."""
    try:
        from longlens._torchvision_shim import install

        install()
        import trl
    except ImportError:
        return None
    cls = getattr(trl, name)
    return {f.name: None if f.default is dataclasses.MISSING else f.default for f in dataclasses.fields(cls)}


def with_trl(config, defaults: Mapping[str, Any]) -> None:
    """Set `config.trl` to the recipe's TRL `defaults` with the config's own ``trl`` entries over them."""
    object.__setattr__(config, "trl", {**defaults, **dict(config.trl or {})})


def trl_args(config, cls_name: str, fixed: dict, what: str):
    """TRL's config class `cls_name` from a recipe's `config.trl` over what the recipe needs (`fixed`), CPU runs
    with ``use_cpu`` and float32 (``bf16`` None: bf16 on a GPU). TRL's own checks become one line."""
    from longlens._torchvision_shim import install

    install()
    trl = require("trl", "train", what)
    torch = require("torch", "train", what)
    cuda = torch.cuda.is_available()
    kw = {"output_dir": config.output_dir, "use_cpu": not cuda, **fixed, **config.trl}
    if kw.get("bf16") is None:
        kw["bf16"] = cuda
    try:
        return getattr(trl, cls_name)(**kw)
    except (TypeError, ValueError) as exc:  # e.g. the batch does not split into groups of num_generations
        first = str(exc).splitlines()[0].rstrip(".")
        hint = ""
        if "num_generations" in first:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            hint = (f"; with {world} process(es), trl.per_device_train_batch_size x "
                    "trl.gradient_accumulation_steps x processes must be a multiple of trl.num_generations (the "
                    "shipped recipes are set for 8 GPUs: on one, --set trl.gradient_accumulation_steps=... to fit)")
        raise LongLensError(f"{what} settings (TRL {trl.__version__} {cls_name}): {first}{hint}") from exc


def _trl_version() -> str:
    import trl

    return trl.__version__


def _check_trl(cls, key: str, value: Any, where: str, raw: str | None = None) -> Any:
    known = trl_fields(cls.TRL)
    if known is None:  # without TRL nothing can train; the value is checked when TRL builds its config
        return value
    if key not in known:
        close = difflib.get_close_matches(key, known, n=3)
        hint = f"; did you mean {', '.join('trl.' + c for c in close)}?" if close else ""
        raise LongLensError(f"{where}: trl.{key} is not a field of TRL's {cls.TRL} (TRL {_trl_version()}){hint}")
    default = known[key]
    if isinstance(default, str) and raw is not None:
        return raw  # --set trl.save_strategy=no stays the word "no"
    if isinstance(default, float) and isinstance(value, str):
        number = _number(value)
        if number is None:
            raise LongLensError(f"{where}: trl.{key} takes a number, got {value!r}")
        return number
    return value  # TRL's own config checks the rest when the recipe builds it


def _number(value: Any) -> float | None:
    """`value` as a float (YAML reads 1e-6, without a dot, as a string), or None when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _check(cls, key: str, value: Any, where: str, raw: str | None = None) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    if key not in known:
        trl_known = trl_fields(cls.TRL) if hasattr(cls, "TRL") else None
        if trl_known and key in trl_known:
            raise LongLensError(f"{where}: {key} is a setting of TRL's {cls.TRL}: write it as trl.{key} "
                                f"(--set trl.{key}=..., or under trl: in the YAML)")
        raise LongLensError(f"{where}: {key!r} is not a setting of {cls.__name__}; known: {', '.join(known)}")
    return _coerce(key, typing.get_type_hints(cls)[key], value, where, raw)


_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false", dict: "a mapping"}


def _kind(hint) -> str:
    """How a setting's type reads in a message: "a whole number", "a list of whole numbers" ..."""
    args = [a for a in typing.get_args(hint) if a is not type(None) and a is not Ellipsis]
    origin = typing.get_origin(hint)
    if origin in (tuple, list):
        inner = _kind(args[0]) if args else "values"
        return "a list of " + {"a whole number": "whole numbers", "a number": "numbers", "text": "texts"}.get(inner,
                                                                                                            inner)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_kind(a) for a in args) + " or null"
    return _NAMES.get(hint, getattr(hint, "__name__", str(hint)))


def _coerce(key: str, hint, value: Any, where: str, raw: str | None) -> Any:
    """`value` as the setting's annotated type (`hint`), or one line naming the setting, the type and the value.
    Lists and their items are checked; a single value for a list setting is a list of one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        return _coerce(key, rest[0], value, where, raw) if len(rest) == 1 else value
    if origin in (tuple, list):
        items = list(value) if isinstance(value, list | tuple) else [value]
        inner = args[0] if args else Any
        checked = [_coerce(f"{key}[{i}]", inner, v, where, None) for i, v in enumerate(items)]
        return tuple(checked) if origin is tuple else checked
    if hint is Any:
        return value
    if hint is str:
        if raw is not None:
            return raw  # --set save_strategy=no stays the word "no" (YAML would read a boolean)
        if isinstance(value, str):
            return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        number = _number(value)
        if number is not None:
            return number
    elif hint is dict or origin is dict:
        if isinstance(value, Mapping):
            return dict(value)
    else:
        return value
    raise LongLensError(f"{where}: {key} takes {_kind(hint)}, got {value!r}")


def load_config(cls, name: str | None = None, overrides: list[str] = (), *, complete: bool = True):
    """`cls` built from the YAML config `name` (a path or a shipped name), then the ``key=value`` overrides.
    `complete`: the settings the recipe cannot run without (``cls.REQUIRED``) must be set (False: a shipped
    recipe can be read on its own, `--print-config`)."""
    values: dict[str, Any] = {}
    if name:
        path = config_path(name)
        for key, value in _read_yaml(path).items():
            if key == "trl" and hasattr(cls, "TRL"):
                if not isinstance(value, Mapping):
                    raise LongLensError(f"{path}: trl: is a mapping of TRL {cls.TRL} fields")
                values["trl"] = {str(k): _check_trl(cls, str(k), v, str(path)) for k, v in value.items()}
            else:
                values[key] = _check(cls, str(key), value, str(path))
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise LongLensError(f"--set {item!r}: write key=value")
        if key.startswith("trl.") and hasattr(cls, "TRL"):
            values.setdefault("trl", {})[key[4:]] = _check_trl(cls, key[4:], _value(text), "--set", text)
        else:
            values[key] = _check(cls, key, _value(text), "--set", text)
    try:
        config = cls(**values)
    except (TypeError, ValueError) as exc:
        raise LongLensError(f"{cls.__name__}: {exc}") from exc
    unset = missing(config)
    if complete and unset:
        raise LongLensError(f"{cls.__name__}: set {', '.join(unset)} (in the config, or --set {unset[0]}=...)")
    return config


def missing(config) -> list[str]:
    """The settings `config` cannot run without (its class's ``REQUIRED``) that are still empty."""
    return [n for n in getattr(type(config), "REQUIRED", ()) if getattr(config, n) in ("", (), None)]


def video_roots(config):
    """A recipe's video folders: its ``video_roots`` (NAME=DIR entries) over its plain ``video_root`` (SFT) or
    ``videos`` (GRPO) folder."""
    from longlens.data.released import VideoRoots

    default = getattr(config, "video_root", "") or getattr(config, "videos", "")
    return VideoRoots.parse(config.video_roots, default=default, flag="video_roots")


def dump_config(config, path: str | Path) -> None:
    """The resolved config as YAML (written next to the trained model: what exactly was run)."""
    yaml = require("yaml", "train", "writing training configs")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
