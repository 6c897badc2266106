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
    """A string with a newline, '=' or '[' is TOML text; anything else is a path."""
    return any(mark in text for mark in ("\n", "=", "["))


def config_text(config: ConfigLike) -> tuple[str, str]:
    """Returns (TOML text, source name for messages).

    The source name is the path as given for files (as the CLI's messages), "<string>" for TOML
    text and "<dict>" for a mapping.
    """
    if isinstance(config, Mapping):
        return tomli_w.dumps(_plain_table(config, "")), "<dict>"
    if isinstance(config, str) and looks_like_toml_text(config):
        return config, "<string>"
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        try:
            data = Path(path).read_bytes()
        except OSError:
            raise ConfigError(f"{path}: cannot open the config file") from None
        try:
            return data.decode("utf-8"), path
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"{path}: not UTF-8 text (byte {error.start}); TOML files are UTF-8"
            ) from None
    raise TypeError(
        f"config must be a path, TOML text or a mapping, not {type(config).__name__}"
    )


def _plain_table(table: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for key, value in table.items():
        if not isinstance(key, str):
            raise ConfigError(f"<dict>: key {key!r} in '{prefix or '(top level)'}' is not a string")
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
