"""One CLI mechanism for every script: typed flags derived from config dataclasses.

Built on ``transformers.HfArgumentParser``: each dataclass field becomes ``--field_name`` (and
``--field-name``) with its type, default, ``Literal`` choices and ``metadata={"help": ..., "aliases":
[...]}``. Published spellings are accepted as aliases (``--load_8bit`` for ``--load_in_8bit``),
booleans accept both ``--flag`` and ``--flag False``, and list fields accept the fire-style
``'[q_proj,v_proj]'`` of the published README as well as ``q_proj v_proj`` and ``q_proj,v_proj``.

Settings groups: a field whose type is itself a dataclass (``gen: GenerationConfig = group(...)``) is
expanded into that dataclass's flags, under its own heading in ``--help``; the parsed values are
rebuilt into the nested instance. The group's defaults are those of the instance the field's
factory makes, so a script can set its own defaults for a shared group (the demo's base model) without
copying a field. Flags stay flat (``--temperature``), as published.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import importlib.util
import inspect
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["arg", "group", "make_parser", "parse_args", "split_list"]


def arg(default: Any = dataclasses.MISSING, help: str = "", aliases: Sequence[str] = (), **kwargs) -> Any:
    """A dataclass field with CLI help and aliases (``default`` may be a factory via ``default_factory``)."""
    metadata = {"help": help}
    if aliases:
        metadata["aliases"] = list(aliases)
    if "default_factory" in kwargs:
        return dataclasses.field(default_factory=kwargs.pop("default_factory"), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def group(factory: Callable[[], Any]) -> Any:
    """A settings-group field: ``factory()`` makes the default instance, whose values are the flag defaults."""
    return dataclasses.field(default_factory=factory)


def split_list(values: Sequence[str] | str | None) -> list[str]:
    """Normalise ``['[a,b]']``, ``'a,b'``, ``['a', 'b']`` and ``"['a', 'b']"`` to ``['a', 'b']``."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        for item in str(value).strip().strip("[]").split(","):
            item = item.strip().strip("\"'").strip()
            if item:
                out.append(item)
    return out


@functools.cache
def _hf_argument_parser() -> type:
    """``transformers.HfArgumentParser``, without the 1-2 s import of the whole ``transformers`` package.

    ``hf_argparser.py`` needs only the standard library and PyYAML, so it is loaded from the installed
    package by file (every script starts faster, ``evaluate_result.py`` included); should a later
    release give it package imports, the normal import is used.
    """
    try:
        spec = importlib.util.find_spec("transformers")
        path = f"{spec.submodule_search_locations[0]}/hf_argparser.py"
        module_spec = importlib.util.spec_from_file_location("g4t._hf_argparser", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module.HfArgumentParser
    except Exception:  # any failure of the shortcut: the plain import
        from transformers import HfArgumentParser

        return HfArgumentParser


def _group_type(hint) -> type | None:
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def _group_default(f: dataclasses.Field, cls: type):
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default if f.default is not dataclasses.MISSING else cls()


def _add_fields(parser: argparse.ArgumentParser, target, cls: type, defaults: Any | None) -> None:
    """Add the flags of ``cls`` to ``target`` (the parser or one of its argument groups)."""
    HfArgumentParser = _hf_argument_parser()

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        sub = _group_type(hints[f.name])
        if sub is not None:
            title = inspect.cleandoc(sub.__doc__ or sub.__name__).splitlines()[0].rstrip(".")
            _add_fields(parser, parser.add_argument_group(title), sub, _group_default(f, sub))
            continue
        field = copy.copy(f)  # HfArgumentParser rewrites field.type; never touch the class's own field
        field.type = hints[f.name]
        if defaults is not None:  # inside a group: the default is the value of the group's default instance
            value = getattr(defaults, f.name)
            field.default, field.default_factory = value, dataclasses.MISSING
            if isinstance(value, list):
                field.default, field.default_factory = dataclasses.MISSING, lambda v=value: list(v)
        HfArgumentParser._parse_dataclass_field(target, field)


def _build(cls: type, namespace: argparse.Namespace):
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.init:
            sub = _group_type(hints[f.name])
            kwargs[f.name] = _build(sub, namespace) if sub is not None else getattr(namespace, f.name)
    return cls(**kwargs)


def make_parser(*dataclass_types: type, description: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``dataclass_types`` (settings groups expanded), for ``--help`` and tests."""
    HfArgumentParser = _hf_argument_parser()

    parser = HfArgumentParser([], description=description)
    for cls in dataclass_types:
        _add_fields(parser, parser, cls, None)
    return parser


def parse_args(*dataclass_types: type, args: Sequence[str] | None = None, description: str | None = None) -> tuple:
    """Parse ``args`` (default ``sys.argv[1:]``) into one instance per dataclass type.

    Invalid values exit with status 2 and a one-line message (argparse style), never a traceback:
    that includes ``ValueError`` raised by a dataclass ``__post_init__`` (of a group or of the config).
    """
    parser = make_parser(*dataclass_types, description=description)
    namespace = parser.parse_args(list(sys.argv[1:] if args is None else args))
    try:
        return tuple(_build(cls, namespace) for cls in dataclass_types)
    except ValueError as e:  # raised by __post_init__ validation
        parser.error(str(e))
