"""Generators of the tools that declare a condition tool (``Generate Image Condition On X``): one- or
two-step requests."""

from __future__ import annotations

import random

from .arg_tools import _SETTINGS, _obj, _wrap
from .image_tools import GENERATORS, Gen
from .words import _adj_noun, _pick, _ref, _Req

# ----------------------------------------------------------------------------------------------
# Condition tools: one- or two-step requests; the builder runs the condition tool first.

# condition tool -> (nouns for its output, verbs that run it (first step, {ref}), "same X" phrases). Every
# registered tool that declares one of these as its condition (ToolSpec.condition) gets a generator.
_CONDITION_WORDS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "Edge Detection On Image": (
        ["edges", "edge map", "outlines", "contours", "canny edges", "line drawing of the borders", "outline"],
        ["find the edges of {ref}", "detect the edges", "trace the outlines of {ref}", "get the canny edges",
         "extract the contours of {ref}", "do edge detection on {ref}", "make an edge map"],
        ["the same outlines", "the same edges", "the same contours"],
    ),
    "Predict Depth On Image": (
        ["depth map", "distance map", "3D structure", "depth information", "z-depth", "near/far map", "3D layout"],
        ["estimate the depth of {ref}", "get a depth map", "work out how far away everything is in {ref}",
         "figure out what is near and far in {ref}", "compute the distance map of {ref}",
         "measure how far things are from the camera in {ref}", "recover the 3D structure of {ref}"],
        ["the same depth", "the same 3D layout", "the same distances", "the same near and far structure",
         "the same spatial layout"],
    ),
    "Sketch Detection On Image": (
        ["scribble", "sketch", "doodle", "scribble map", "rough lines", "hand-drawn scribble"],
        ["turn {ref} into a scribble", "make a rough sketch of {ref}", "get a scribble", "doodle over {ref}",
         "scribble out the main shapes of {ref}", "reduce {ref} to a scribble"],
        ["that scribble", "the same rough lines", "those rough lines", "the same doodle"],
    ),
    "Segment the Image": (
        ["segmentation", "segments", "segmentation map", "region masks", "layout of segments"],
        ["segment {ref}", "split {ref} into segments", "get the segmentation", "segment everything in {ref}",
         "divide {ref} into regions"],
        ["the same segments", "the same layout of regions", "that segmentation"],
    ),
    "Pose Detection On Image": (
        ["pose", "body position", "skeleton", "posture", "keypoints", "stick figure", "joint positions"],
        ["detect the pose in {ref}", "get the human pose", "find the body keypoints in {ref}", "extract the skeleton",
         "figure out the person's posture in {ref}"],
        ["the same pose", "that posture", "the same body position", "that skeleton"],
    ),
    "Hed Detection On Image": (
        ["soft edges", "HED boundaries", "soft boundary map", "HED map", "soft outlines", "fuzzy boundaries"],
        ["find the soft edges of {ref}", "run HED on {ref}", "get the soft boundaries", "detect the HED boundaries",
         "make a soft edge map"],
        ["the same soft edges", "those soft boundaries", "the same HED outline"],
    ),
    "Predict Normal Map On Image": (
        ["normal map", "surface normals", "normals", "surface orientation", "bump map"],
        ["estimate the surface normals of {ref}", "get a normal map", "predict the normals", "compute the normal map of {ref}",
         "work out the surface orientation in {ref}"],
        ["the same surface normals", "that normal map", "the same surface shape"],
    ),
    "Line Detection On Image": (
        ["straight lines", "wireframe", "straight edges", "M-LSD map", "ruler-straight edges", "linear structure"],
        ["detect the straight lines in {ref}", "get the wireframe", "extract a wireframe of {ref}",
         "trace the straight edges of {ref}", "run M-LSD on {ref}", "map the straight edges in {ref}"],
        ["the same straight lines", "that wireframe", "the same straight edges", "the same architecture"],
    ),
}  # fmt: skip
_HUMANS = ["an astronaut", "a knight in armor", "a ballerina", "a superhero", "a robot", "an old wizard", "a soccer player",
           "a zombie", "a samurai", "a clown", "a firefighter", "a pirate", "a marble statue", "a cartoon character",
           "a chef", "a woman in a red dress", "a man in a suit", "a child in a raincoat"]  # fmt: skip
_THINGS = ["a tiger", "a futuristic city", "a wooden cabin", "a spaceship", "a castle", "a red sports car", "a cat",
           "an underwater scene", "a jungle", "a snowy village", "a lion", "a bowl of fruit", "a cyberpunk street",
           "a medieval town", "a garden full of flowers", "a toy version of it", "a golden statue", "a dragon",
           "a painting of a harbor", "an alien landscape", "a living room", "a forest at dawn"]  # fmt: skip
_GEN_VERBS = ["generate", "make", "create", "draw", "render", "paint", "produce", "build"]


def _condition_desc(condition: str, ctx: dict, rng: random.Random) -> str:
    r = rng.random()
    if condition == "Pose Detection On Image":  # a pose needs a body to wear it
        d = _pick(rng, _HUMANS)
    elif r < 0.55:
        d = _pick(rng, _THINGS)
    elif r < 0.8:
        o = _obj(ctx, rng)
        d = _adj_noun(rng, o, ["golden", "glass", "futuristic", "wooden", "snowy", "neon", "giant", "robotic"])
    else:
        d = f"{_pick(rng, _THINGS)} {_pick(rng, _SETTINGS)}"
    return d + _pick(rng, ["", "", "", "", ", photorealistic", ", in watercolor", " at sunset", ", anime style"])


def _condition_gen(condition: str) -> Gen:
    nouns, steps, sames = _CONDITION_WORDS[condition]

    def gen(ctx: dict, rng: random.Random, req: _Req) -> tuple[str, list[str]]:
        desc = _condition_desc(condition, ctx, rng)
        d = req.arg(desc)
        ref = _ref(rng)
        noun = _pick(rng, nouns)
        verb = _pick(rng, _GEN_VERBS)
        if rng.random() < ctx.get("multi_step", 0.35):
            step = _pick(rng, steps).replace("{ref}", ref)
            then = _pick(rng, [
                f"{step} and then {verb} {d} from {_pick(rng, ['it', 'them', 'that', 'the result'])}",
                f"first {step}, then {verb} a new image of {d} with {_pick(rng, sames)}",
                f"{step}, then use the {noun} to {verb} {d}",
                f"{step} and use that to {verb} {d}",
                f"{step}. After that, {verb} {d} based on the {noun}",
                f"step 1: {step}. step 2: {verb} {d} from the {noun}",
                f"{step}; once you have the {noun}, {verb} {d}",
                f"{step} first and {verb} {d} that follows {_pick(rng, sames)}",
            ])  # fmt: skip
            return _wrap(rng, then), ["example.jpg", desc]
        core = _pick(rng, [
            f"{verb} {d} from the {noun} of {ref}", f"use the {noun} of {ref} to {verb} {d}",
            f"{verb} a new image of {d} with {_pick(rng, sames)} as {ref}", f"keep the {noun} of {ref} but {verb} {d}",
            f"{verb} {d} following the {noun} of {ref}", f"take the {noun} from {ref} and {verb} {d}",
            f"{verb} {d} that matches the {noun} of {ref}", f"based on the {noun} of {ref}, {verb} {d}",
            f"{verb} {d} guided by the {noun} of {ref}", f"{verb} {d} using {ref}'s {noun}",
            f"turn {ref} into {d} but keep {_pick(rng, sames)}",
        ])  # fmt: skip
        return _wrap(rng, core), ["example.jpg", desc]

    return gen


def _register() -> None:
    from g4t.data.catalog import condition_pairs

    for tool, condition in condition_pairs().items():
        if condition in _CONDITION_WORDS:  # otherwise missing_generators() names the tool
            GENERATORS[tool] = _condition_gen(condition)


_register()
