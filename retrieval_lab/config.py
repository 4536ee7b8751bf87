"""Typed views of the Hydra config: each stage validates its own node and names the offending key."""
from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from retrieval_lab.errors import ConfigError

T = TypeVar("T")


def to_container(node: Any) -> Any:
    if isinstance(node, DictConfig) or OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True)
    return node


def typed(cls: type[T], node: Any, prefix: str, ignore: tuple[str, ...] = ()) -> T:
    """Build dataclass `cls` from a config node; unknown keys and wrong types are errors naming the key."""
    data = to_container(node) or {}
    if not isinstance(data, dict):
        raise ConfigError(prefix, f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key in ignore:
            continue
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(fields)}"
            raise ConfigError(f"{prefix}.{key}", "unknown key", hint)
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            value = typed(hint, value, f"{prefix}.{key}")
        else:
            value = _coerce(value, hint, f"{prefix}.{key}")
        kwargs[key] = value
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(key, f"{value!r} is not a valid {hint}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"expected a list, got {value!r}")
        return [_coerce(v, args[0], key) for v in value] if args else list(value)
    if origin is dict or hint is dict or hint is Any:
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
        return value
    return value


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The config `retrieval-lab run <overrides>` would get, without starting a Hydra job."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from retrieval_lab.paths import conf_dir, hydra_search_path

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("config", overrides=[*overrides, f"hydra.searchpath={hydra_search_path()}"])
