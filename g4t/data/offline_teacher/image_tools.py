"""The generator registry (``GENERATORS``) and the tools whose only input is the image."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from .words import _FRONT_REFS, _GET, _IMPERATIVE, _LEADS, _PURPOSES, _TAILS, _WANT, _pick, _ref, _Req

Gen = Callable[[dict, random.Random, _Req], tuple[str, list[str]]]
GENERATORS: dict[str, Gen] = {}


def _generator(*names: str) -> Callable[[Gen], Gen]:
    def deco(fn: Gen) -> Gen:
        for n in names:
            if n in GENERATORS:
                raise ValueError(f"two generators for {n!r}")
            GENERATORS[n] = fn
        return fn

    return deco


def _frame(rng: random.Random, act: str, thing: str, prep: str, questions: Sequence[str] = ()) -> str:
    """Compose one request for a tool whose only input is the image.

    Args:
        act: an action phrase with ``{ref}`` ("trace the edges in {ref}").
        thing: an output noun phrase with its article ("an edge map").
        prep: preposition before the image reference ("of", "for", "in").
        questions: full questions with ``{ref}`` ("how far away is everything in {ref}?").
    """
    ref = _ref(rng)
    form = rng.randrange(9 if questions else 8)
    lead = _pick(rng, _LEADS)
    tail = _pick(rng, _TAILS)
    purpose = _pick(rng, _PURPOSES)
    no_ref = rng.random() < 0.18
    front = rng.random() < 0.15 and not no_ref
    lead = "" if front else lead
    of_ref = "" if no_ref or front else f" {prep} {ref}"
    if no_ref or front:
        act = re.sub(r" (?:of|in|on|for|from|to|across|within|inside|at|throughout|using) \{ref\}", "", act)
        act = re.sub(r"(\w+) (out|up|down) \{ref\}", r"\1 it \2", act).replace("{ref}", "it")
    act = act.replace("{ref}", ref)
    if form == 0:
        text = f"{lead}{_pick(rng, _IMPERATIVE)}{act}{purpose}{tail}"
        text = text + ("?" if text.startswith(("Can", "Could", "Would")) else _pick(rng, [".", "", "!", "."]))
    elif form == 1:
        imp = _pick(rng, _IMPERATIVE)
        get = _pick(rng, [g for g in _GET if not (imp.endswith("me ") and g.endswith(" me"))])
        text = f"{lead}{imp}{get} {thing}{of_ref}{purpose}{tail}"
        text = text + ("?" if text.startswith(("Can", "Could", "Would")) else _pick(rng, [".", "", "!"]))
    elif form == 2:
        text = f"{lead}{_pick(rng, _WANT)} {thing}{of_ref}{purpose}{tail}"
        text += "?" if re.match(r"(Can|Could|May)", _strip_lead(text)) else _pick(rng, [".", "", "!"])
    elif form == 3:
        modal = _pick(rng, ["Can you", "Could you", "Would you be able to", "Is it possible to", "Are you able to",
                            "How do I", "Can we", "Any chance you could", "Do you think you could"])  # fmt: skip
        text = f"{lead}{modal} {act}{purpose}?"
    elif form == 4:
        bare = re.sub(r"^(an? |the |some )", "", thing)
        text = f"{bare}{of_ref}{_pick(rng, ['', ' pls', ' please', '?', ' now', ', thx'])}"
    elif form == 5:
        text = f"{lead}{act}{_pick(rng, ['', ' please', ' pls', ' now'])}"
    elif form == 6:
        text = f"{lead}What would {thing}{of_ref} look like?"
    elif form == 7:
        text = f"{lead}{_pick(rng, ['I wonder if you can', 'I was hoping you could', 'Mind if I ask you to'])} {act}{tail}."
    else:
        q = _pick(rng, questions)
        if no_ref or front:
            q = re.sub(r" (?:of|in|on|for|from|to|across|within|at) \{ref\}", "", q).replace("{ref}", "it")
        text = f"{lead}{q.replace('{ref}', ref)}"
    if front:
        text = f"{_pick(rng, _FRONT_REFS)} {text[:1].lower() + text[1:]}"
    return text


def _strip_lead(text: str) -> str:
    for lead in _LEADS:
        if lead and text.startswith(lead):
            return text[len(lead) :]
    return text


def _image_tool(acts: Sequence[str], things: Sequence[str], preps: Sequence[str], questions: Sequence[str] = ()) -> Gen:
    def gen(ctx: dict, rng: random.Random, req: _Req) -> tuple[str, list[str]]:
        return _frame(rng, _pick(rng, acts), _pick(rng, things), _pick(rng, preps), questions), ["example.jpg"]

    return gen


# ----------------------------------------------------------------------------------------------
# Image-only tools (image -> map / text).

GENERATORS["Edge Detection On Image"] = _image_tool(
    acts=[
        "detect the edges in {ref}", "trace the outlines of {ref}", "run canny on {ref}", "find the edges of {ref}", "edge-detect {ref}",
        "outline everything in {ref}", "pull out the contours of {ref}", "draw the borders of the objects in {ref}",
        "turn {ref} into an edge map", "highlight the edges in {ref}", "do edge detection on {ref}",
        "mark where the outlines are in {ref}", "apply a canny filter to {ref}", "find all the contours in {ref}",
        "make a line drawing of the borders in {ref}", "extract the object outlines from {ref}",
        "show only the edges of {ref}", "convert {ref} to black and white edges",
    ],
    things=[
        "an edge map", "the edges", "the outlines", "the contours", "a canny edge image", "a canny map",
        "a line drawing of the borders", "an outline image", "the object boundaries", "an edge image",
        "the canny edges", "a contour map", "the sharp edges", "a black and white outline", "the silhouette lines",
    ],
    preps=["of", "of", "for", "from", "in"],
    questions=[
        "where are the edges in {ref}?", "what do the outlines of {ref} look like?", "can I see just the contours of {ref}?",
        "what would {ref} look like as an outline only?", "which edges does canny find in {ref}?",
    ],
)  # fmt: skip
GENERATORS["Hed Detection On Image"] = _image_tool(
    acts=[
        "detect the soft boundaries in {ref}", "run HED on {ref}", "find the soft edges of {ref}",
        "get a holistically-nested edge map of {ref}", "trace the soft outlines in {ref}",
        "extract smooth, fuzzy boundaries from {ref}", "do HED boundary detection on {ref}",
        "make a soft edge map from {ref}", "find the gentle object borders in {ref}",
        "pull out the blurry contour lines of {ref}", "compute the soft boundary image of {ref}",
    ],
    things=[
        "a soft edge map", "the soft boundaries", "a HED map", "a HED boundary image", "the fuzzy outlines",
        "a soft boundary map", "a holistically-nested edge map", "the soft contours", "a smooth edge image",
        "the soft hed edges", "a blurry outline map", "the soft object borders",
    ],
    preps=["of", "of", "for", "from"],
    questions=["what do the soft boundaries of {ref} look like?", "where are the soft edges in {ref}?"],
)  # fmt: skip
GENERATORS["Sketch Detection On Image"] = _image_tool(
    acts=[
        "turn {ref} into a scribble", "make a rough sketch of {ref}", "scribble out {ref}", "doodle the main shapes of {ref}",
        "draw a quick sketch from {ref}", "detect the sketch lines in {ref}", "reduce {ref} to a scribble",
        "make a hand-drawn style scribble from {ref}", "get the scribble version of {ref}", "sketch out {ref}",
        "create a simple doodle of {ref}", "trace a rough scribble over {ref}",
    ],
    things=[
        "a scribble", "a sketch", "a rough sketch", "a scribble map", "a doodle", "a hand-drawn scribble",
        "a quick sketch", "the sketch lines", "a scribble drawing", "a simple sketch", "a messy scribble",
        "the rough pencil scribble", "a sketch outline",
    ],
    preps=["of", "of", "from", "for"],
    questions=["what would a scribble of {ref} look like?", "can {ref} be turned into a rough sketch?"],
)  # fmt: skip
GENERATORS["Line Detection On Image"] = _image_tool(
    acts=[
        "detect the straight lines in {ref}", "find the line segments in {ref}", "extract a wireframe of {ref}",
        "run M-LSD on {ref}", "trace the straight edges of {ref}", "find all straight lines across {ref}",
        "mark the linear structures in {ref}", "pick out the ruler-straight lines of {ref}",
        "get the straight line segments from {ref}", "highlight every straight line in {ref}",
        "map the straight edges of the buildings in {ref}",
    ],
    things=[
        "the straight lines", "a wireframe", "a line segment map", "the line segments", "an M-LSD map",
        "a straight line map", "the straight edges", "a wireframe image", "the linear structures", "a map of straight lines",
    ],
    preps=["of", "in", "from", "for"],
    questions=["where are the straight lines in {ref}?", "which straight line segments are in {ref}?"],
)  # fmt: skip
GENERATORS["Predict Depth On Image"] = _image_tool(
    acts=[
        "estimate the depth of {ref}", "work out how far away things are in {ref}", "make a distance map of {ref}",
        "figure out which parts of {ref} are close and which are far", "predict the depth in {ref}",
        "recover the 3D structure of {ref}", "measure the distance from the camera across {ref}",
        "compute a depth image for {ref}", "show how deep the scene in {ref} is", "estimate the z-depth of {ref}",
        "visualize near and far in {ref}", "get the depth information out of {ref}", "map the depth of field in {ref}",
    ],
    things=[
        "a depth map", "the depth", "a distance map", "the 3D structure", "a depth image", "a z-depth map",
        "the depth estimation", "a near/far map", "the distance to the camera", "the depth information",
        "a heat map of distance", "a depth estimate", "the scene depth",
    ],
    preps=["of", "of", "for", "from", "in"],
    questions=[
        "how far away are the things in {ref}?", "which objects in {ref} are closest to the camera?",
        "what's near and what's far in {ref}?", "how deep is the scene in {ref}?",
        "can you tell the distance of everything in {ref}?", "what does the 3D layout of {ref} look like?",
    ],
)  # fmt: skip
GENERATORS["Predict Normal Map On Image"] = _image_tool(
    acts=[
        "estimate the surface normals of {ref}", "predict a normal map for {ref}", "work out which way the surfaces face in {ref}",
        "compute the surface orientation in {ref}", "make a normal map from {ref}", "get the normals of {ref}",
        "show the surface directions in {ref}", "create a bump map of {ref}", "recover the surface geometry of {ref}",
        "find the orientation of every surface in {ref}",
    ],
    things=[
        "a normal map", "the surface normals", "the normals", "a surface orientation map", "a bump map",
        "a normal image", "the surface orientation", "an RGB normal map", "the surface direction map",
    ],
    preps=["of", "for", "from"],
    questions=["which way do the surfaces in {ref} face?", "what are the surface normals of {ref}?"],
)  # fmt: skip
GENERATORS["Pose Detection On Image"] = _image_tool(
    acts=[
        "detect the human pose in {ref}", "find the body keypoints in {ref}", "draw the skeleton of the people in {ref}",
        "estimate the posture of the person in {ref}", "run openpose on {ref}", "get the pose of everyone in {ref}",
        "track the joints of the people in {ref}", "make a stick figure of the person's pose in {ref}",
        "extract the body positions from {ref}", "map out the arms and legs of the people in {ref}",
        "figure out how the person is standing in {ref}",
    ],
    things=[
        "the human pose", "a pose map", "a skeleton", "the body keypoints", "a stick figure", "the posture",
        "an openpose image", "the pose skeleton", "the joint positions", "a keypoint map", "the body pose",
    ],
    preps=["of", "from", "in", "for"],
    questions=["what pose is the person in {ref} in?", "how are the people in {ref} positioned? show the skeleton",
               "where are the joints of the person in {ref}?"],
)  # fmt: skip
GENERATORS["Segment the Image"] = _image_tool(
    acts=[
        "split {ref} into its parts", "mask every object in {ref}", "give every object in {ref} its own mask",
        "find the outline of each separate thing in {ref} as masks", "carve {ref} up into object regions",
        "divide {ref} into regions", "segment all the objects in {ref}", "cut {ref} up into segments",
        "separate all the parts of {ref}", "make masks for everything in {ref}", "run segment anything on {ref}",
        "break {ref} down into segments", "partition {ref} into separate regions", "do a full segmentation of {ref}",
    ],
    things=[
        "a segmentation", "masks of all the objects", "a full segmentation", "all the segments", "the segments",
        "a mask for every object", "a segmented version", "the regions", "an all-object mask image", "a segment map",
    ],
    preps=["of", "for", "from"],
    questions=["what are all the segments in {ref}?", "how would {ref} split into separate parts?"],
)  # fmt: skip
GENERATORS["Segmentation On Image"] = _image_tool(
    acts=[
        "do semantic segmentation on {ref}", "label every pixel of {ref} by category", "make a color-coded class map of {ref}",
        "classify each region of {ref}", "produce an ADE20K-style semantic map for {ref}",
        "color the regions of {ref} by what they are", "semantically segment {ref}", "tag each area of {ref} with its class",
        "run a semantic segmenter on {ref}", "paint each class in {ref} a different color",
    ],
    things=[
        "a semantic segmentation", "a semantic map", "a class map", "a color-coded class map", "a per-pixel label map",
        "a semantic segmentation map", "a category map", "the semantic regions", "a labelled region map",
    ],
    preps=["of", "for", "from"],
    questions=["which class does each region of {ref} belong to?", "what categories cover {ref}, pixel by pixel?"],
)  # fmt: skip
GENERATORS["Get Photo Description"] = _image_tool(
    acts=[
        "describe {ref}", "tell me what's in {ref}", "caption {ref}", "write a caption for {ref}", "explain what {ref} shows",
        "summarize the scene in {ref}", "tell me about {ref}", "give a short description of {ref}",
        "say what you see in {ref}", "describe the scene in {ref} in a sentence", "sum up {ref}",
        "describe what is going on in {ref}",
    ],
    things=[
        "a description", "a caption", "a short summary", "a one-line description", "a quick caption", "an overview",
        "a summary of the scene", "a description of the contents", "an alt text",
    ],
    preps=["of", "for"],
    questions=[
        "what's in {ref}?", "what is {ref} about?", "what am I looking at in {ref}?", "what does {ref} show?",
        "what's going on in {ref}?", "what can you see in {ref}?", "what is happening in {ref}?",
        "what is this a picture of?", "can you tell me what {ref} is?", "what's this?",
    ],
)  # fmt: skip
GENERATORS["Text Detection On Image"] = _image_tool(
    acts=[
        "read the text in {ref}", "transcribe the writing in {ref}", "OCR {ref}", "extract the words from {ref}",
        "find any text in {ref}", "pull the words out of {ref}", "recognize the letters in {ref}",
        "copy out the text shown in {ref}", "detect the printed words in {ref}", "read out any signs or labels in {ref}",
        "find the writing on things in {ref}",
    ],
    things=[
        "the text", "the words", "a transcription", "the writing", "the OCR result", "the printed text",
        "all the text", "the letters and numbers", "any written words",
    ],
    preps=["in", "of", "from", "on"],
    questions=[
        "what does the text in {ref} say?", "is there any writing in {ref}?", "what words appear in {ref}?",
        "can you read the text in {ref}?", "what's written in {ref}?", "what do the signs in {ref} say?",
    ],
)  # fmt: skip
GENERATORS["Detection"] = _image_tool(
    acts=[
        "detect all the objects in {ref}", "box every object in {ref}", "find everything in {ref}",
        "label all the things in {ref} with boxes", "run object detection on {ref}", "draw boxes around all objects in {ref}",
        "identify and box everything in {ref}", "tag every item in {ref}", "spot all objects in {ref}",
        "locate every object in {ref}", "mark all the objects you can find in {ref}", "detect whatever is in {ref}",
    ],
    things=[
        "all the objects", "every object", "bounding boxes for everything", "an object detection", "all detections",
        "boxes around all objects", "every item boxed", "a list of detected objects with boxes", "labelled boxes",
    ],
    preps=["in", "of", "for"],
    questions=["what objects are in {ref}? box them all", "how many objects can you detect in {ref}?",
               "which things can you find in {ref}? draw boxes"],
)  # fmt: skip
