"""One CLI mechanism for every script: typed flags derived from config dataclasses.

Built on ``transformers.HfArgumentParser``: each dataclass field becomes ``--field_name`` with its
type, default, ``Literal`` choices and ``metadata={"help": ..., "aliases": [...]}``. Published
spellings are accepted as aliases (``--num-chunks`` and ``--num_chunks``), booleans accept both
``--flag`` and ``--flag False``, and list fields accept the fire-style ``'[q_proj,v_proj]'`` of the
published README as well as ``q_proj v_proj`` and ``q_proj,v_proj``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["arg", "parse_args", "split_list"]


def arg(default: Any = dataclasses.MISSING, help: str = "", aliases: Sequence[str] = (), **kwargs) -> Any:
    """A dataclass field with CLI help and aliases (``default`` may be a factory via ``default_factory``)."""
    metadata = {"help": help}
    if aliases:
        metadata["aliases"] = list(aliases)
    if "default_factory" in kwargs:
        return dataclasses.field(default_factory=kwargs.pop("default_factory"), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


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


def parse_args(*dataclass_types: type, args: Sequence[str] | None = None, description: str | None = None) -> tuple:
    """Parse ``args`` (default ``sys.argv[1:]``) into one instance per dataclass type.

    Invalid values exit with status 2 and a one-line message (argparse style), never a traceback:
    that includes ``ValueError`` raised by a dataclass ``__post_init__``.
    """
    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclass_types, description=description)
    argv = list(sys.argv[1:] if args is None else args)
    try:
        return tuple(parser.parse_args_into_dataclasses(args=argv))
    except ValueError as e:  # raised by __post_init__ validation
        parser.error(str(e))
