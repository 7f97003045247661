"""Tool registry, the ``--load`` parser, lazy model loading and safe tool execution.

A *tool class* is the unit users load with ``--load "Name_device,..."`` (the published class
names: ``ImageCaptioning``, ``Text2Box``, ...). It exposes one or more *tools*: methods decorated
with ``@tool(name=..., description=..., inputs=...)`` carrying the exact published strings.
``@register_tool_class("Name", requires=(...))`` records the class; composite classes (the published
"template models") list the classes they are built from and are created automatically once all of
them are loaded. (``TOOL_CLASSES`` maps class names to ``ToolClassSpec``; ``ToolModel`` is the base of
every tool class, named for the model weights most of them load.)

Tool inputs are declared by name. ``image`` inputs are resolved inside the conversation's
workspace and opened as RGB ``PIL.Image``; any other input is passed as a stripped string. A tool
returns text or a ``PIL.Image`` (saved as a new PNG next to its input image). ``Toolbox.run``
returns an ``Observation``: the text the LLM reads (an image result is named by its workspace-relative
file name), the image files the call produced, and whether it failed. Any error becomes a readable
observation instead of a crash (naming workspace files relative to the conversation folder, never
by absolute server path).
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from g4t.tools.errors import ImageError, PathError
from g4t.tools.workspace import Workspace

__all__ = [
    "TOOL_CLASSES",
    "TOOLS",
    "ToolClassSpec",
    "Observation",
    "ToolError",
    "ToolModel",
    "ToolSpec",
    "Toolbox",
    "check_conditions",
    "parse_load",
    "parse_tool_models",
    "register_tool_class",
    "split_args",
    "tool",
]

logger = logging.getLogger(__name__)


class ToolError(RuntimeError):
    """A tool could not do its job; the message is shown to the LLM as the observation."""


@dataclass(frozen=True)
class Observation:
    """What one tool call gave back.

    Attributes:
        text: what the LLM reads after ``Observation:`` (an image result is its workspace-relative
            file name, an error starts with ``Error:`` or names the unknown tool).
        images: absolute paths of the image files the call wrote (inside the workspace).
        error: True when the call failed (unknown tool, bad input, tool error).
    """

    text: str
    images: tuple[Path, ...] = ()
    error: bool = False

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class ToolSpec:
    """One tool: what the LLM sees, and the facts every other part reads from here (agent, data
    builder, offline teacher, docs).

    Attributes:
        name: exact tool name (part of the trained prompt distribution: never reword).
        description: exact description, trailing whitespace included.
        inputs: declared input names in Action Input order; ``image`` inputs are image paths.
        model: the ``--load`` class name that provides it.
        method: the attribute name of the implementing method.
        returns_image: the tool produces an image (its method's return annotation holds
            ``Image.Image``); otherwise it answers with text.
        condition: the tool that makes this tool's input image (``Edge Detection On Image`` for the
            Canny ControlNet tool: the published TOOLS_CONDITION); the data builder calls it first.
        training_observation: the placeholder the training data shows instead of a real result
            (published TOOLS_OUTPUT_FORMAT, e.g. ``[output_from_vqa_tool]``); None: a saved image name.
    """

    name: str
    description: str
    inputs: tuple[str, ...]
    model: str
    method: str
    returns_image: bool = False
    condition: str | None = None
    training_observation: str | None = None

    @property
    def takes_image(self) -> bool:
        """The first Action Input argument is an image path."""
        return bool(self.inputs) and self.inputs[0] == "image"


@dataclass
class ToolClassSpec:
    """A loadable class (``--load`` unit).

    Attributes:
        name: published class name used in ``--load``.
        cls: the implementing class.
        requires: class names a composite is built from (empty for ordinary classes).
        default_model: default Hugging Face id (or None for tools without weights).
        gpu_memory: rough GPU memory in fp16, for the docs.
        tools: the tools it exposes, in declaration order.
        helper: a class that exposes no tool of its own and only serves composites (the published
            ``Inpainting``); it is loaded with ``--load`` like any other class.
    """

    name: str
    cls: type
    requires: tuple[str, ...] = ()
    default_model: str | None = None
    gpu_memory: str = "-"
    tools: list[ToolSpec] = field(default_factory=list)
    helper: bool = False


TOOL_CLASSES: dict[str, ToolClassSpec] = {}
TOOLS: dict[str, ToolSpec] = {}


def _returns_image(fn: Callable, name: str) -> bool:
    """Whether ``fn`` is annotated to return an image (``Image.Image`` or ``Image.Image | str``) or text."""
    try:
        returns = inspect.signature(fn, eval_str=True).return_annotation
    except (NameError, TypeError, SyntaxError):
        returns = inspect.Signature.empty
    kinds = set(typing.get_args(returns)) if typing.get_args(returns) else {returns}
    if not kinds or not kinds <= {Image.Image, str}:
        raise ValueError(
            f"tool {name!r}: annotate what {fn.__qualname__} returns: str, Image.Image or Image.Image | str"
        )
    return Image.Image in kinds


def tool(
    name: str,
    description: str,
    inputs: tuple[str, ...],
    *,
    condition: str | None = None,
    training_observation: str | None = None,
) -> Callable:
    """Mark a method of a ``ToolModel`` as a tool with its exact published name and description.

    Args:
        name: exact tool name.
        description: exact description (trailing whitespace is part of it).
        inputs: the method's parameters, in Action Input order (``image`` means an image path).
        condition: name of the tool whose output image this tool takes as input (see ``ToolSpec``).
        training_observation: placeholder observation of the training data (see ``ToolSpec``);
            every published tool that answers with text has one.

    Whether the tool returns an image is read from the method's return annotation, which must be
    ``str``, ``Image.Image`` or ``Image.Image | str``.
    """
    if not name.strip() or not description.strip():
        raise ValueError("a tool needs a non-empty name and description")

    def mark(fn: Callable) -> Callable:
        params = [p for p in inspect.signature(fn).parameters if p != "self"]
        if tuple(params) != tuple(inputs):
            raise ValueError(f"tool {name!r}: {fn.__qualname__} takes {params}, but inputs declare {list(inputs)}")
        returns_image = _returns_image(fn, name)
        if condition is not None and (not inputs or inputs[0] != "image"):
            raise ValueError(f"tool {name!r}: a condition tool makes an input image, but the first input is not one")
        fn._g4t_tool = {
            "name": name,
            "description": description,
            "inputs": tuple(inputs),
            "returns_image": returns_image,
            "condition": condition,
            "training_observation": training_observation,
        }
        return fn

    return mark


def register_tool_class(
    name: str,
    *,
    requires: tuple[str, ...] = (),
    default_model: str | None = None,
    gpu_memory: str = "-",
    helper: bool = False,
) -> Callable[[type], type]:
    """Class decorator: register a ``--load`` class and the tools its methods declare.

    ``helper=True`` registers a class without tools of its own (it only serves composites); every
    other class must declare at least one tool, and a helper may declare none.
    """

    def deco(cls: type) -> type:
        if name in TOOL_CLASSES:
            raise ValueError(f"tool class {name!r} is registered twice")
        spec = ToolClassSpec(name, cls, tuple(requires), default_model, gpu_memory, helper=helper)
        for attr, fn in cls.__dict__.items():
            if not hasattr(fn, "_g4t_tool"):
                continue
            facts = fn._g4t_tool
            if facts["name"] in TOOLS:
                raise ValueError(f"tool name {facts['name']!r} is registered twice")
            spec.tools.append(ToolSpec(model=name, method=attr, **facts))
        if not spec.tools and not helper:
            raise ValueError(f"tool class {name!r} declares no tools")
        if spec.tools and helper:
            raise ValueError(f"helper class {name!r} may not declare tools")
        for t in spec.tools:
            TOOLS[t.name] = t
        TOOL_CLASSES[name] = spec
        cls.spec = spec
        return cls

    return deco


class ToolModel:
    """Base of every ``--load`` class: device, model id, lazy thread-safe ``setup()``.

    Args:
        device: torch device string from ``--load`` (``cpu``, ``cuda:0``...).
        model_id: Hugging Face id or local path; defaults to the class's ``default_model``.
        deps: for composite classes, the loaded instances they are built from, by class name.
    """

    spec: ToolClassSpec

    def __init__(self, device: str = "cpu", model_id: str | None = None, deps: dict[str, ToolModel] | None = None):
        self.device = device
        self.model_id = model_id or self.spec.default_model
        self.deps = deps or {}
        self._loaded = False
        self._lock = threading.Lock()

    @property
    def torch_dtype(self):
        """fp16 on CUDA, fp32 elsewhere (as published)."""
        import torch

        return torch.float16 if "cuda" in self.device else torch.float32

    def setup(self) -> None:
        """Load weights. Called once, on first use; override in classes with models."""

    def ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                if self.model_id:
                    logger.warning("Loading %s (%s) on %s ...", self.spec.name, self.model_id, self.device)
                try:
                    self.setup()
                except (OSError, ValueError) as e:
                    raise ToolError(
                        f"could not load {self.model_id!r} for {self.spec.name}: {str(e).splitlines()[0]}. "
                        f"Without network access, download it elsewhere and pass a local path with "
                        f'--tool_models "{self.spec.name}=/path/to/model".'
                    ) from e
                self._loaded = True


def check_conditions(tools: dict[str, ToolSpec] | None = None) -> None:
    """Check that every declared condition names a registered tool that turns one image into another.

    Raises:
        ValueError: the condition tool is unknown, does not take a single image or returns no image.
    """
    tools = TOOLS if tools is None else tools
    for spec in tools.values():
        if spec.condition is None:
            continue
        cond = tools.get(spec.condition)
        if cond is None:
            raise ValueError(f"tool {spec.name!r}: its condition {spec.condition!r} is not a registered tool")
        if cond.inputs != ("image",) or not cond.returns_image:
            raise ValueError(f"tool {spec.name!r}: its condition {cond.name!r} must take one image and return one")


_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def parse_load(text: str) -> dict[str, str]:
    """Parse ``--load "Text2Box_cuda:0, Segmenting_cuda:0,ImageCaptioning_cpu"`` into ``{class: device}``.

    Spaces and newlines are tolerated; a missing device means ``cpu``.

    Raises:
        ValueError: unknown class names (the message lists the valid ones) or malformed devices.
    """
    result: dict[str, str] = {}
    for entry in re.split(r"[,\n]", text):
        entry = entry.strip()
        if not entry:
            continue
        name, _, device = entry.partition("_")
        name, device = name.strip(), (device.strip() or "cpu")
        if name not in TOOL_CLASSES:
            raise ValueError(f"--load: unknown tool class {name!r}; valid names: {', '.join(sorted(TOOL_CLASSES))}")
        if not _DEVICE.match(device):
            raise ValueError(f"--load: bad device {device!r} for {name} (use cpu, cuda, cuda:N or mps)")
        result[name] = device
    return result


def parse_tool_models(text: str | None) -> dict[str, str]:
    """Parse ``--tool_models "ImageCaptioning=/models/blip,Text2Image=org/sd"`` into ``{class: id}``."""
    result: dict[str, str] = {}
    for entry in re.split(r"[,\n]", text or ""):
        if not entry.strip():
            continue
        name, sep, model_id = entry.partition("=")
        name = name.strip()
        if not sep or not model_id.strip():
            raise ValueError(f"--tool_models: expected Class=model_id, got {entry.strip()!r}")
        if name not in TOOL_CLASSES:
            raise ValueError(
                f"--tool_models: unknown tool class {name!r}; valid names: {', '.join(sorted(TOOL_CLASSES))}"
            )
        result[name] = model_id.strip()
    return result


def split_args(text: str, n: int) -> list[str]:
    """Split an Action Input into ``n`` arguments.

    The first argument (the image path) ends at the first comma. With three arguments the last one
    starts after the last comma, so commas inside the middle text never break the call; with two,
    everything after the first comma (commas included) is the text, as published.
    """
    text = text.strip()
    if n <= 1:
        return [text.strip().strip("\"'")]
    head, sep, rest = text.partition(",")
    if not sep:
        return [text.strip("\"' ")]
    if n == 2:
        parts = [head, rest]
    else:
        middle, sep2, last = rest.rpartition(",")
        parts = [head, middle, last] if sep2 else [head, rest]
    return [p.strip().strip("\"'").strip() for p in parts]


def _import_families() -> None:
    """Import every tool family so its classes register (model libraries stay lazy inside them)."""
    import g4t.tools  # noqa: F401


def _load_image(workspace: Workspace, arg: str) -> tuple[Image.Image, Path]:
    """The image an Action Input names. Image names never hold spaces, so an input such as
    ``image/1a2b3c4d.png detect the edges`` (the request copied after the name, no comma: a
    common small-model slip) means its first word when the whole text names no image."""
    try:
        return workspace.load_image(arg)
    except ImageError:
        raise  # the file exists but is not a usable image: say so
    except PathError:
        first, _, rest = arg.strip().partition(" ")
        if rest:
            try:
                return workspace.load_image(first)
            except PathError:
                pass
        raise


class Toolbox:
    """The loaded tools of one process (shared by all conversations; models are loaded once).

    Args:
        load: ``{class name: device}`` (see ``parse_load``) or the ``--load`` string itself.
        model_ids: per-class model id overrides.
    """

    def __init__(self, load: dict[str, str] | str, model_ids: dict[str, str] | None = None) -> None:
        _import_families()
        load = parse_load(load) if isinstance(load, str) else dict(load)
        model_ids = model_ids or {}
        self.instances: dict[str, ToolModel] = {}
        for name, device in load.items():
            spec = TOOL_CLASSES[name]
            if spec.requires:
                missing = [r for r in spec.requires if r not in load]
                if missing:
                    raise ValueError(
                        f"--load: {name} is built from {', '.join(spec.requires)}; add {', '.join(missing)}"
                    )
                continue  # composites are built below
            self.instances[name] = spec.cls(device=device, model_id=model_ids.get(name))
        for name, spec in TOOL_CLASSES.items():
            if spec.requires and all(r in self.instances for r in spec.requires):
                deps = {r: self.instances[r] for r in spec.requires}
                self.instances[name] = spec.cls(device=deps[spec.requires[0]].device, deps=deps)
        self.tools: dict[str, ToolSpec] = {t.name: t for inst in self.instances.values() for t in inst.spec.tools}

    def descriptions(self) -> list[tuple[str, str]]:
        """``(name, description)`` of every loaded tool, in load order."""
        return [(t.name, t.description) for t in self.tools.values()]

    def has_tool_class(self, name: str) -> bool:
        return name in self.instances

    def call(self, tool_name: str, *args):
        """Call a tool directly with already-parsed arguments (images as PIL), after lazy loading."""
        spec = self.tools[tool_name]
        inst = self.instances[spec.model]
        inst.ensure_loaded()
        for dep in inst.deps.values():
            dep.ensure_loaded()
        return getattr(inst, spec.method)(*args)

    def run(self, tool_name: str, tool_input: str, workspace: Workspace) -> Observation:
        """Run a tool on an Action Input string; never raises (every failure is an error observation)."""
        spec = self.tools.get(tool_name.strip())
        args = split_args(tool_input, len(spec.inputs)) if spec is not None else []
        if spec is not None and len(args) != len(spec.inputs):
            message = (
                f"{spec.name} expects {len(spec.inputs)} comma-separated inputs "
                f"({', '.join(spec.inputs)}), got {tool_input.strip()!r}"
            )
            return Observation(f"Error: {workspace.relativize(message)}", error=True)
        return self.run_args(tool_name, args, workspace)

    def run_args(self, tool_name: str, args: Sequence[str], workspace: Workspace) -> Observation:
        """Run a tool on already separated arguments: one string per declared input, in order (image
        inputs are workspace names; text inputs are taken whole, commas included). Never raises."""
        name = tool_name.strip()
        spec = self.tools.get(name)
        if spec is None:
            return Observation(f"{name} is not a valid tool, try another one.", error=True)
        try:
            if len(args) != len(spec.inputs):
                raise ToolError(
                    f"{spec.name} expects {len(spec.inputs)} inputs ({', '.join(spec.inputs)}), got {len(args)}"
                )
            values, first_image = [], None
            for input_name, arg in zip(spec.inputs, args, strict=True):
                if input_name == "image":
                    image, path = _load_image(workspace, arg)
                    first_image = first_image or path
                    values.append(image)
                else:
                    if not arg:
                        raise ToolError(f"{spec.name}: the {input_name} input is empty")
                    values.append(arg)
            result = self.call(spec.name, *values)
            if isinstance(result, Image.Image):
                saved = workspace.save_image(result, next_to=first_image)
                return Observation(saved, images=(workspace.resolve(saved),))
            return Observation(str(result))
        except (PathError, ToolError) as e:
            return Observation(f"Error: {workspace.relativize(str(e))}", error=True)
        except Exception as e:  # a broken tool (or a full disk) must not end the conversation
            logger.exception("tool %s failed", name)
            # the message may carry absolute server paths (OSError filenames): name files relatively
            return Observation(
                f"Error: {spec.name} failed ({e.__class__.__name__}: {workspace.redact(str(e))})", error=True
            )
