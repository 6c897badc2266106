"""Turning what a user passes as a config (a path, TOML text or a mapping) into TOML text."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np
import tomli_w

from ._sgdwalk import ConfigError

#: A config: a path to a TOML file, TOML text, or a mapping laid out like the TOML file.
ConfigLike = Union[str, "os.PathLike[str]", Mapping[str, Any]]


def looks_like_toml_text(text: str) -> bool:
    """A string with a newline is TOML text; one that names an existing file is a path (which may
    hold '=' or '[': runs/lr=0.01/config.toml); otherwise a string with '=' or '[' is TOML text
    and anything else a path."""
    if "\n" in text:
        return True
    try:
        if Path(text).is_file():
            return False
    except (OSError, ValueError):  # a name too long for the file system, or with a NUL
        pass
    return "=" in text or "[" in text


def config_text(config: ConfigLike) -> tuple[str, str]:
    """Returns (TOML text, source name for messages).

    The source name is the path as given for files (as the CLI's messages), "<string>" for TOML
    text and "<dict>" for a mapping.
    """
    if isinstance(config, Mapping):
        plain = _plain_table(config, "")
        sweep = config.get("sweep")
        if isinstance(sweep, Mapping) and "order" not in sweep:
            # TOML writes a table's values before its sub-tables, which would put a nested swept
            # parameter ("learning_rate_schedule.gamma") after the others; the grid's nesting
            # follows the key order, so the dict's order is given explicitly.
            order = _swept_names(sweep)
            if len(order) > 1:
                plain["sweep"]["order"] = order
        return tomli_w.dumps(plain), "<dict>"
    if isinstance(config, str) and looks_like_toml_text(config):
        return config, "<string>"
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        if path == "":
            raise ConfigError(
                "config is an empty string: give a config file's path, TOML text or a mapping")
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise ConfigError(
                f"{path}: cannot open the config file ({error.strerror or error})") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"{path}: not UTF-8 text (byte {error.start}); TOML files are UTF-8"
            ) from None
        if path.endswith(".json"):
            # A run's summary.json: its resolved config, run again (as `sgdwalk run
            # RUN/summary.json`).
            from ._sgdwalk import config_text_from_json

            return config_text_from_json(text, path), path
        return text, path
    raise TypeError(
        f"config must be a path, TOML text or a mapping, not {type(config).__name__}"
    )


def _swept_names(sweep: Mapping[str, Any]) -> list[str]:
    """The swept parameters of a [sweep] mapping in its key order, nested tables as dotted names
    (a {linspace: ...} or {logspace: ...} mapping is a value, not a table)."""
    names: list[str] = []
    for key, value in sweep.items():
        if key in ("mode", "order"):
            continue
        if isinstance(value, Mapping) and not set(value) & {"linspace", "logspace"}:
            names.extend(f"{key}.{inner}" for inner in value)
        else:
            names.append(key)
    return names


def _plain_table(table: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for key, value in table.items():
        if not isinstance(key, str):
            raise ConfigError(f"<dict>: key {key!r} in '{prefix or '(top level)'}' is not a string")
        if prefix == "sweep" and "." in key:
            # A swept parameter's name, as docs/CONFIG.md, Results.swept and to_xarray spell it
            # ("learning_rate_schedule.gamma", "stiffness.1"): in TOML a dotted key, i.e. nested
            # tables, which is what the config expects (tomli_w would quote it as one key).
            outer, inner = key.split(".", 1)
            nested = plain.setdefault(outer, {})
            if not isinstance(nested, dict):
                raise ConfigError(f"<dict>: key 'sweep.{outer}' is given both as a value and as a "
                                  f"table (through 'sweep.{key}')")
            nested.update(_plain_table({inner: value}, f"sweep.{outer}"))
            continue
        if isinstance(plain.get(key), dict) and isinstance(value, Mapping):
            plain[key].update(_plain_value(value, f"{prefix}.{key}" if prefix else key))
            continue
        plain[key] = _plain_value(value, f"{prefix}.{key}" if prefix else key)
    return plain


def _plain_value(value: Any, key: str) -> Any:
    """Python and numpy values as the types tomli_w writes (bool, int, float, str, list, dict)."""
    if isinstance(value, Mapping):
        return _plain_table(value, key)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float, str)):
        return value  # nan and inf too: the config check says where they are not allowed
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_plain_value(item, f"{key}[{index}]") for index, item in enumerate(value)]
    if value is None:
        raise ConfigError(f"<dict>: key '{key}': None has no TOML form; leave the key out")
    raise ConfigError(
        f"<dict>: key '{key}': a {type(value).__name__} has no TOML form; allowed: bool, int, "
        "float, str, lists and mappings of them"
    )
