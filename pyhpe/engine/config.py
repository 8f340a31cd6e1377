"""Plain dataclass configs read from json/dicts: unknown keys are errors at every level.

A config class derives from :class:`Config` (a dataclass). ``from_dict`` builds nested
dataclass fields from nested dicts, picks a variant class by a ``type`` key where a field
declares ``variants`` in its metadata, and collects the remaining keys into one declared
``extra`` field only where a class opts in (free-form keyword arguments that the constructor
they are passed to validates). ``apply_overrides`` applies ``a.b=v`` strings to a dict.
"""
from __future__ import annotations

import dataclasses
import json
import os
import typing
from typing import Any, ClassVar, Dict, Iterable, Optional, Union


class ConfigError(ValueError):
    """A config that does not fit its schema; the message names the key path."""


def _is_config(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp) and issubclass(tp, Config)


class Config:
    """Mixin for config dataclasses (see the module docstring)."""

    #: name of a ``Dict[str, Any]`` field that receives keys the class does not declare
    extra_field: ClassVar[Optional[str]] = None

    @classmethod
    def from_dict(cls, d: Optional[Dict[str, Any]], path: str = ""):
        if d is None:
            d = {}
        if isinstance(d, cls):
            return d
        where = path or cls.__name__
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a dict, got {type(d).__name__} {d!r}")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        kwargs, extra = {}, {}
        for key, value in d.items():
            f = fields.get(key)
            if f is None or key == cls.extra_field:
                if cls.extra_field is None:
                    known = sorted(k for k in fields if k != cls.extra_field)
                    raise ConfigError(f"{where}: unknown key {key!r} (known keys: {known})")
                extra[key] = value
                continue
            sub = f"{path}.{key}" if path else key
            kwargs[key] = _convert(value, hints.get(key), f.metadata, sub)
        if cls.extra_field is not None:
            kwargs[cls.extra_field] = extra
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"{where}: {e}") from e

    def to_dict(self) -> Dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == self.extra_field:
                out.update(_plain(v))
            else:
                out[f.name] = _plain(v)
        return out


def _plain(v):
    if isinstance(v, Config):
        return v.to_dict()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _convert(value, tp, metadata, path):
    variants = metadata.get("variants") if metadata else None
    if variants is not None:
        if value is None:
            return None
        key = metadata.get("variant_key", "type")
        if not isinstance(value, dict) and not isinstance(value, tuple(variants.values())):
            raise ConfigError(f"{path}: expected a dict, got {type(value).__name__}")
        if isinstance(value, tuple(variants.values())):
            return value
        kind = value.get(key)
        if kind not in variants:
            raise ConfigError(f"{path}.{key}: must be one of {sorted(variants)}, got {kind!r}")
        return variants[kind].from_dict(value, path)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(value, inner[0], None, path)
        return value
    if _is_config(tp):
        return tp.from_dict(value, path)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and value is not None and not isinstance(value, tp):
        if not (tp is float and isinstance(value, (int, float)) and not isinstance(value, bool)):
            raise ConfigError(f"{path}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    if origin in (tuple, list) and isinstance(value, (list, tuple)):
        return tuple(value) if origin is tuple else list(value)
    return value


def load_config_dict(config: Union[str, os.PathLike, Dict[str, Any]]) -> Dict[str, Any]:
    """A config dict from a json path or a dict (deep-copied)."""
    if isinstance(config, (str, os.PathLike)):
        try:
            with open(config) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read config {str(config)!r}: {e}") from e
    if isinstance(config, Config):
        return config.to_dict()
    if not isinstance(config, dict):
        raise ConfigError(f"a config is a json path or a dict, got {type(config).__name__}")
    return json.loads(json.dumps(config))


def parse_value(text: str):
    """A ``--set`` value: json when it parses (numbers, true/false/null, lists, dicts, quoted
    strings), else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def apply_overrides(config: Dict[str, Any], overrides: Iterable[str]) -> Dict[str, Any]:
    """Apply ``"a.b.c=value"`` overrides to a config dict in place (and return it). Missing
    intermediate dicts are created; the schema then rejects keys it does not know."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE (e.g. train.epochs=3), got {item!r}")
        parts = key.strip().split(".")
        node = config
        for i, k in enumerate(parts[:-1]):
            nxt = node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(parts[:i + 1])} is not a section")
            node = nxt
        node[parts[-1]] = parse_value(text)
    return config


__all__ = ["Config", "ConfigError", "apply_overrides", "load_config_dict", "parse_value"]
