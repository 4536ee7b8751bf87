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
    """Build dataclass `cls` from a config node; unknown keys and wrong types are errors naming the key (under
    `prefix`; "" for a top-level node)."""
    data = to_container(node) or {}
    if not isinstance(data, dict):
        raise ConfigError(prefix, f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key in ignore:
            continue
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(fields)}"
            raise ConfigError(path, "unknown key", hint)
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            value = typed(hint, value, path)
        else:
            value = _coerce(value, hint, path)
        kwargs[key] = value
    return cls(**kwargs)


def check_choice(key: str, value: Any, allowed, *, nullable: bool = False, what: str = "") -> Any:
    """The one check of an option that takes one of a fixed set of values: returns `value`, or raises a ConfigError
    naming the key and every allowed value, with the closest one as the fix (values are case-sensitive: `Fail` is
    not `fail`). `what` says why the set is what it is (e.g. "offered by backend bm25s")."""
    allowed = list(allowed)
    if value in allowed or (nullable and value is None):
        return value
    shown = ", ".join(map(str, allowed)) + (" or null" if nullable else "")
    text = str(value)
    close = [a for a in allowed if str(a).lower() == text.lower()] or \
        difflib.get_close_matches(text, [str(a) for a in allowed], n=1)
    fix = f"set {key}={close[0]}" if close else f"set {key} to one of: {shown}"
    raise ConfigError(key, f"{value!r} is not one of the allowed values{' ' + what if what else ''}: {shown}", fix)


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


OVERRIDE_GRAMMAR = ("Hydra's override grammar, as `retrieval-lab run` takes it: group=option (retriever=hybrid), "
                    "a.b=value (retriever.k1=1.2), +a.new_key=value, ~group")


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> list:
    """The overrides as Hydra parses them (`hydra.core.override_parser.types.Override`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        raise ConfigError("overrides", f"cannot parse {' '.join(overrides)}: {exc}", OVERRIDE_GRAMMAR) from None


# Keys renamed so that every stage is chosen by `name`: old key -> new key. Stored configs (exports, logged runs) are
# migrated on read (pipeline/migrate.py); a command line or config file still using an old key is an error naming the
# new one.
RENAMED_KEYS = {"retriever.fusion.method": "retriever.fusion.name", "reranker.type": "reranker.name"}


def renamed_key_error(old: str, value: Any = None) -> ConfigError:
    new = RENAMED_KEYS[old]
    shown = "VALUE" if value is None else value
    return ConfigError(old, f"renamed to {new}: every stage is chosen by its name", f"use {new}={shown}")


def check_renamed_keys(overrides: list[str] | tuple[str, ...]) -> None:
    """A command-line override of a renamed key (`retriever.fusion.method=rrf`) is an error naming the new key."""
    try:
        parsed = parse_overrides([o for o in overrides if "=" in o and not o.startswith("-")])
    except ConfigError:  # malformed: Hydra reports it with its grammar
        return
    for override in parsed:
        key = override.key_or_group.split("@")[0]
        if key in RENAMED_KEYS and not override.is_delete():
            value = (",".join(override.sweep_string_iterator()) if override.is_sweep_override()
                     else override.get_value_element_as_str())
            raise renamed_key_error(key, value)


def cache_dirs_in(overrides: list[str] | tuple[str, ...]) -> list[str | None]:
    """The cache roots a command line asks for: each `cache.dir=` value (every value of a sweep), or `[None]` for
    the default root ($RETRIEVAL_LAB_CACHE or ~/.cache/retrieval-lab)."""
    dirs: list[str | None] = []
    for override in parse_overrides(overrides):
        if override.key_or_group != "cache.dir" or override.is_delete():
            continue
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
        dirs += [None if v in (None, "null") else str(v) for v in values]
    return dirs or [None]


def compose(config_name: str, overrides: list[str] | tuple[str, ...] = (),
            cache_dirs: list[str | None] | None = None, hydra_node: bool = False) -> DictConfig:
    """Compose `config_name` (a file in conf/ or a ConfigStore entry) with Hydra, as `retrieval-lab run` does, with
    `<cache>/conf` of `cache_dirs` (default: the `cache.dir` the overrides set) on the search path, so registered
    models' options (`embedder=<name>`) are found. Composition errors become a ConfigError naming the overrides."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from retrieval_lab.paths import conf_dir, hydra_search_path

    overrides = list(overrides)
    check_renamed_keys(overrides)
    if not any(o.startswith("hydra.searchpath") for o in overrides):
        overrides.append(f"hydra.searchpath={hydra_search_path(cache_dirs or cache_dirs_in(overrides))}")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            return hydra_compose(config_name, overrides=overrides, return_hydra_config=hydra_node)
    except (HydraException, OmegaConfBaseException) as exc:
        shown = " ".join(o for o in overrides if not o.startswith("hydra.searchpath"))
        raise ConfigError("overrides", f"cannot compose the config with `{shown}`: {exc}", OVERRIDE_GRAMMAR) from None


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The config `retrieval-lab run <overrides>` would get, without starting a Hydra job."""
    return compose("config", overrides)


def run_config_groups() -> list[str]:
    """The config groups of a run, in the order of conf/config.yaml's defaults list."""
    from retrieval_lab.paths import conf_dir

    groups = []
    for entry in OmegaConf.load(conf_dir() / "config.yaml").get("defaults") or []:
        if isinstance(entry, str) or OmegaConf.is_config(entry) and len(entry) != 1:
            continue  # _self_
        key = str(next(iter(entry))).split("@")[0]
        groups.append(key.removeprefix("optional ").removeprefix("override ").strip())
    return groups


FROZEN_CONFIG = "retrieval_lab_frozen"  # the ConfigStore entry `compose_over` composes


def compose_over(body: dict, overrides: list[str] | tuple[str, ...] = (),
                 cache_dirs: list[str | None] | None = None) -> DictConfig:
    """Compose a resolved config (e.g. an export's) with overrides in the grammar of `run`.

    The primary config is `body` with a defaults list naming every config group of a run with no option
    (`[_self_, retriever: null, ...]`). `group=option` then loads that option with its own defaults list (the
    hybrid retriever's bm25 and dense inputs; `+pipeline=...` overriding several groups), and `a.b=value` changes a
    value of the body. A group's top-level node is taken out of the body when the overrides select an option for
    it, so the option replaces the recorded node instead of being merged into it."""
    from hydra.core.config_store import ConfigStore

    groups = run_config_groups()
    parsed = parse_overrides(overrides)
    cache_dirs = cache_dirs or cache_dirs_in(overrides)
    group_names = set(groups) | _group_folders(cache_dirs)
    selections = [o.input_line for o in parsed if o.key_or_group.split("@")[0] in group_names and not o.is_delete()]
    deleted = {o.key_or_group for o in parsed if o.is_delete() and o.key_or_group in group_names}
    store = ConfigStore.instance()
    defaults = ["_self_", *({group: None} for group in groups)]
    replaced: set[str] = set()
    if selections:  # which groups the selections end up choosing (one option may override others)
        store.store(name=FROZEN_CONFIG, node={"defaults": defaults})
        choices = compose(FROZEN_CONFIG, selections, cache_dirs, hydra_node=True).hydra.runtime.choices
        replaced = {group for group, option in choices.items() if "/" not in group and option is not None}
    kept = {key: value for key, value in body.items() if key not in replaced | deleted}
    store.store(name=FROZEN_CONFIG, node={"defaults": defaults, **kept})
    remaining = [o.input_line for o in parsed if not (o.is_delete() and o.key_or_group in deleted)]
    return compose(FROZEN_CONFIG, remaining, cache_dirs)


def _group_folders(cache_dirs: list[str | None]) -> set[str]:
    from retrieval_lab.paths import conf_dir, extra_config_roots

    roots = [conf_dir(), *extra_config_roots(cache_dirs)]
    return {p.name for root in roots if root.is_dir() for p in root.iterdir() if p.is_dir()}
