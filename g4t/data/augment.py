"""Tool-name augmentation: teach a model to choose a tool by its description, not by a memorised name.

A small model fine-tuned on a fixed set of tools learns "edges -> Edge Detection On Image" as a pair of
strings and never reads the tool list; shown a tool it was not trained on, it answers with a trained
name whose words look close ("straight lines" -> "Sketch Detection On Image"). ``rename_tools`` gives a
share of the tools in the training prompts a neutral made-up name ("Amber Relay", "Quiet Engine"): the
description stays, the name changes in every place the record holds it (the ``> name: description``
line, the ``[name, ...]`` list, ``Action: name`` lines of earlier steps and of the target). A renamed
tool can only be chosen by reading its description and copying its name from the list, which is what
a tool the model has never seen asks for.

Records whose prompts agree up to the request (one session: one image, one tool list) get the same
names, so ``--share_prefix`` still computes their shared prompt once. Every tool of a prompt, target or
not, is renamed with the same probability, so "the odd name out" is no shortcut. The evaluation splits
are never renamed: the published names are an interface.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from g4t.data.build import session_key
from g4t.prompts import TOOL_NAMES_LIST

__all__ = ["ALIAS_WORDS", "rename_tools"]

# Two-word names from neutral words: no word hints at what a tool does, and none is a published tool
# name or part of one, so an alias can never be read as a real tool.
ALIAS_WORDS = (
    (
        "Amber",
        "Blue",
        "Cedar",
        "Delta",
        "Ember",
        "Falcon",
        "Granite",
        "Harbor",
        "Indigo",
        "Juniper",
        "Kestrel",
        "Lumen",
        "Maple",
        "Nimbus",
        "Onyx",
        "Quartz",
        "Rowan",
        "Saffron",
        "Tundra",
        "Violet",
        "Willow",
        "Zephyr",
    ),
    (
        "Relay",
        "Engine",
        "Helper",
        "Module",
        "Service",
        "Utility",
        "Agent",
        "Kit",
        "Works",
        "Studio",
        "Lab",
        "Desk",
        "Bench",
        "Forge",
        "Loom",
        "Beacon",
    ),
)

_ALIASES = [f"{a} {b}" for a in ALIAS_WORDS[0] for b in ALIAS_WORDS[1]]
_TOOL_LINE = re.compile(r"^> (?P<name>[^:\n]+): ", re.M)


def _aliases(names: Sequence[str], rate: float, rng: random.Random) -> dict[str, str]:
    """A new name for each of ``names`` with probability ``rate``, all distinct."""
    renamed = [n for n in names if rng.random() < rate]
    return dict(zip(renamed, rng.sample(_ALIASES, len(renamed)), strict=True))


def _apply(text: str, alias: dict[str, str]) -> str:
    text = _TOOL_LINE.sub(lambda m: f"> {alias.get(m['name'], m['name'])}: ", text)
    text = TOOL_NAMES_LIST.sub(
        lambda m: "should be one of [" + ", ".join(alias.get(n, n) for n in m["names"].split(", ")) + "]", text
    )
    return re.sub(r"^Action: (.+)$", lambda m: f"Action: {alias.get(m[1], m[1])}", text, flags=re.M)


def rename_tools(records: Sequence[dict], rate: float, seed: int | str = 0) -> list[dict]:
    """Copies of published-format records (``instruction``/``output``) with tools renamed (see the module docs).

    Args:
        records: training records; a record's tools are read from its ``> name: description`` lines.
        rate: probability that a tool of a prompt gets a made-up name (0: records returned unchanged).
        seed: seed of the choices; the same records, rate and seed give the same result.

    Returns:
        New record dicts (the inputs are not modified); an ``Action`` list, where present, is renamed too.
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"rename rate must be in [0, 1], got {rate}")
    rng = random.Random(f"{seed}-rename")
    by_session: dict[str, dict[str, str]] = {}
    out = []
    for record in records:
        key = session_key(record)
        if key not in by_session:
            names = [m["name"] for m in _TOOL_LINE.finditer(key)]
            if len(names) > len(_ALIASES):
                raise ValueError(f"{len(names)} tools in one prompt: more than the alias names available")
            by_session[key] = _aliases(names, rate, rng) if rate else {}
        alias = by_session[key]
        new = dict(record)
        if alias:
            new["instruction"] = _apply(record["instruction"], alias)
            new["output"] = _apply(record["output"], alias)
            if isinstance(record.get("Action"), list):
                new["Action"] = [alias.get(a, a) for a in record["Action"]]
        out.append(new)
    return out
