"""An offline teacher: captions -> varied teacher replies (and no-tool chit-chat) without a network.

Stands in for the ChatGPT teacher of ``scripts/get_instruction.py`` when no endpoint is reachable.
For every caption it writes one line per chosen tool, ``N. "request", [tool_name, example.jpg, args]``,
the shape the published teacher prompt asks for, so the project's parser (``g4t.data.parse``) and
record builder (``scripts/generate_annotations.py``) turn the replies into training records.
Output: the JSONL records ``{"file_name", "caption", "instructions"}`` that ``get_instruction.py`` writes.

Every registered tool has a generator (``GENERATORS``; ``missing_generators()`` lists registry tools
without one, a test keeps it empty). A request is composed from parts, not picked from a list:
a lead-in ("hey,", "quick one:"), a politeness frame ("could you please ...", "I'd like ...",
"pls"), the task as an imperative, a question or a wish, worded with synonyms the tool description
does not use (edges: "outline", "contours"; depth: "how far away things are", "distance map"), the
image referred to anywhere in the sentence ("this photo", "the pic", "it", "my image") or not at all,
an optional purpose or thanks. Object tools use nouns of the caption; text arguments (VQA
questions, edit and style instructions, generation prompts, box coordinates) are composed too and
appear verbatim in the request, so the model learns to copy them. ``Generate Image Condition On X``
tools get one-step requests ("use the outline of this photo to draw a tiger") and two-step ones
("find the edges first, then generate a tiger from them"); both map to the one published line, the
builder adds the condition step (``g4t.data.catalog.CONDITION``).

Knobs (keyword arguments of ``write_replies`` / ``teacher_lines``):

* ``tools``: tools to write lines for (default: the 26 published teacher tools; pass
  ``generator_tools()`` for every registered tool, and give the extras to
  ``generate_annotations.py --tools``, see ``extra_tools()``).
* ``tools_per_caption``: tools drawn per caption (0: all, as the published prompt asks).
* ``noise``: share of mislabelled lines -- the request is written for *another* tool while the call
  stays (the teacher error data selection should catch).
* ``typo_rate`` (0.08): share of requests with one or two character slips (swap, drop, double) in
  the free text; arguments and their copies in the request are never touched.
* ``multi_step`` (0.35): share of condition-tool requests phrased as two steps.
* ``seed``: every choice comes from one ``random.Random(seed)``: same inputs + seed = same bytes.

``write_negatives(captions, path, n, seed)`` writes an Alpaca-format JSON list of no-tool exchanges
(greetings, thanks, small talk, general knowledge, arithmetic, questions that need no look at the
image) for ``generate_annotations.py --insert_alpaca --alpaca_path FILE``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "GENERATORS",
    "extra_tools",
    "generator_tools",
    "make_request",
    "missing_generators",
    "negative_items",
    "teacher_lines",
    "write_negatives",
    "write_replies",
]

_ARG = "\x00{}\x01"  # marker of a protected (copied) span inside a request under construction
_ARG_RE = re.compile("\x00(\\d+)\x01")


def _pick(rng: random.Random, items: Sequence[str]) -> str:
    return items[rng.randrange(len(items))]


def _maybe(rng: random.Random, p: float, text: str, other: str = "") -> str:
    return text if rng.random() < p else other


# ----------------------------------------------------------------------------------------------
# Caption analysis: nouns and small noun phrases.

_STOP = set(
    "a an the of on in at to with and or is are was were be been being its his her their them they "
    "this that these those some there here two three four five six several many few one has have "
    "had next near by up down top side front back while for from it as into onto over under "
    "behind above below beside between through out off very other each another who which what "
    "where when how all both any lot lots group bunch pair couple piece view image picture photo "
    "shot close closeup around along across against inside outside sits stands looks looking can "
    "will just about like kind sort type set full large small big little tall short long young old "
    "white black red blue green yellow orange brown pink purple gray grey wooden dark bright colorful "
    "empty busy open middle left right together another various different while someone something upside inside "
    "bottom holds rides eats plays sits stands walks runs flies lies waits carries sleeps drinks talks sit stand "
    "ride hold play eat walk fly lay lie".split()
)
_ADJ = set(
    "white black red blue green yellow orange brown pink purple gray grey wooden large small big "
    "little tall young old metal plastic glass striped colorful dark silver golden".split()
)


def _nouns(caption: str) -> list[str]:
    """Noun phrases of a caption: runs of content words ("hand rail", "red sofa") and their heads."""
    words = re.findall(r"[a-zA-Z]+", caption.lower())
    out: list[str] = []
    run: list[str] = []
    for w in [*words, "."]:
        if w in _ADJ and not run:
            run = [w]
            continue
        skip = w in _STOP or len(w) < 3 or (w.endswith(("ing", "ly", "ed")) and w not in ("bed", "sled"))
        if not skip:
            run.append(w)
            continue
        heads = [x for x in run if x not in _ADJ]
        if heads:
            phrase = " ".join(run[-3:])
            out += [phrase, heads[-1]] if phrase != heads[-1] else [phrase]
        run = [w] if w in _ADJ else []
    return list(dict.fromkeys(out)) or ["object"]


def _plural_like(noun: str) -> bool:
    return noun.endswith("s") and not noun.endswith(("ss", "us", "is"))


def _adj_noun(rng: random.Random, noun: str, adjs: Sequence[str]) -> str:
    adj = _pick(rng, adjs)
    if _plural_like(noun):
        return f"{adj} {noun}"
    return f"{'an' if adj[0] in 'aeiou' else 'a'} {adj} {noun}"


def _subject(caption: str) -> str:
    s = " ".join(caption.strip().rstrip(".!").split())
    return (s[:1].lower() + s[1:]) if s else "a scene"


_PEOPLE = {"man", "woman", "person", "people", "boy", "girl", "child", "children", "kid", "kids", "player"}
_PEOPLE |= {"men", "women", "lady", "guy", "skier", "surfer", "skateboarder", "rider", "batter", "tennis"}

# ----------------------------------------------------------------------------------------------
# Shared request parts.

_REFS = [
    "this image", "this photo", "the picture", "the image", "the photo", "this picture", "it", "my image",
    "my photo", "the pic", "this pic", "this shot", "the uploaded image", "the image I sent", "this one",
    "the photo I just uploaded", "my picture", "this", "the attached photo", "that image", "the snapshot",
]  # fmt: skip
_FRONT_REFS = [
    "For this photo,", "In this picture,", "Looking at the image,", "About the photo I sent:", "For my image,",
    "With this pic,", "Here's a photo.", "Take this image.", "Got a picture here.", "Using the uploaded image,",
    "For the attached picture,", "Regarding this shot,",
]  # fmt: skip
_LEADS = [
    "", "", "", "", "", "", "", "", "Hey, ", "Hi! ", "Okay, ", "OK so ", "Quick one: ", "Hmm, ", "Alright, ",
    "Hello, ", "So, ", "Next, ", "Now ", "One more thing: ", "Right, ", "Hey there, ", "Also, ", "Well, ",
]  # fmt: skip
_IMPERATIVE = [
    "", "", "", "", "Please ", "Could you please ", "Can you ", "Could you ", "Would you ", "Would you please ",
    "Can you please ", "Kindly ", "I need you to ", "I want you to ", "Help me ", "Go ahead and ", "Try to ",
    "Pls ", "Please could you ", "Let's ", "I'd like you to ", "Just ", "Can u ", "I'd appreciate it if you'd ",
]  # fmt: skip
_WANT = [
    "I'd like", "I want", "I need", "I would like", "Give me", "Show me", "Can I get", "Could I have",
    "Can I see", "May I have", "I'm looking for", "Let me see", "Could you show me", "Can you give me",
    "I'd love", "Please give me", "Please show me", "Could you give me", "Get me", "Send me",
]  # fmt: skip
_TAILS = [
    "", "", "", "", "", "", " please", " for me", " pls", ", thanks", ", thank you", " if you can",
    " when you get a chance", " real quick", " please and thanks", ", would be great", " asap",
]  # fmt: skip
_PURPOSES = [
    "", "", "", "", "", "", "", "", " for a school project", " for my presentation", " so I can compare",
    " for a design I'm working on", " for my blog", " because I'm curious", " to use as a reference",
    " for an art project", " for my portfolio",
]  # fmt: skip
_GET = ["give me", "show me", "make", "create", "produce", "generate", "get", "compute", "extract", "render",
        "build", "draw", "output", "return", "work out"]  # fmt: skip


def _ref(rng: random.Random) -> str:
    return _pick(rng, _REFS)


class _Req:
    """A request under construction: free text plus protected spans (copied arguments)."""

    def __init__(self) -> None:
        self.spans: list[str] = []

    def arg(self, text: str) -> str:
        self.spans.append(text)
        return _ARG.format(len(self.spans) - 1)


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


# ----------------------------------------------------------------------------------------------
# Tools with an object / text argument. Each returns (request with markers, args).


def _wrap(rng: random.Random, core: str, question: bool = False) -> str:
    """Politeness, lead-in, tail and final punctuation around an imperative ``core``."""
    lead = _pick(rng, _LEADS)
    r = rng.random()
    if core.lower().startswith(("based on", "step 1", "first ")):
        return f"{lead}{core}{_pick(rng, _TAILS)}{_pick(rng, ['.', '', '!'])}"
    if question or r < 0.3:
        modal = _pick(rng, ["Can you", "Could you", "Could you please", "Would you", "Can you please",
                            "Would you mind if you", "Is it possible to", "Any chance you could", "Will you"])  # fmt: skip
        if modal == "Would you mind if you":
            first = core.split(" ", 1)[0]
            modal = "Would you mind" if first.isalpha() and first.islower() and first != "first" else "Could you"
        core = _gerund(core) if modal == "Would you mind" else core
        return f"{lead}{modal} {core}{_pick(rng, _PURPOSES)}?"
    if r < 0.45:
        want = _pick(rng, ["I'd like you to", "I want you to", "I need you to", "Please", "Please,", "Kindly",
                           "Go ahead and", "Help me", "Try to", "Let's"])  # fmt: skip
        return f"{lead}{want} {core}{_pick(rng, _PURPOSES)}{_pick(rng, _TAILS)}{_pick(rng, ['.', '!', ''])}"
    return f"{lead}{core}{_pick(rng, _TAILS)}{_pick(rng, ['.', '', '!', '.'])}"


def _gerund(core: str) -> str:
    verb, _, rest = core.partition(" ")
    irregular = {"put": "putting", "get": "getting", "cut": "cutting", "swap": "swapping", "run": "running",
                 "set": "setting", "make": "making", "take": "taking", "have": "having", "give": "giving",
                 "split": "splitting", "trim": "trimming", "clip": "clipping", "map": "mapping", "step": "stepping",
                 "zoom": "zooming", "whip": "whipping", "let": "letting", "see": "seeing"}  # fmt: skip
    if verb in irregular:
        g = irregular[verb]
    elif verb.endswith("e") and not verb.endswith("ee"):
        g = verb[:-1] + "ing"
    else:
        g = verb + "ing"
    return f"{g} {rest}".strip()


def _in_ref(rng: random.Random) -> str:
    return _pick(rng, ["", "", "", " in the picture", " in this photo", " from the image", " in my photo", " here",
                       " in it", " in this image", " from this pic", " in the shot", " in the scene"])  # fmt: skip


def _obj(ctx: dict, rng: random.Random) -> str:
    return _pick(rng, ctx["nouns"])


@_generator("Detect the Give Object")
def _detect(ctx, rng, req):
    o = _obj(ctx, rng)
    a = req.arg(o)
    be = "are" if _plural_like(o) else "is"
    acts = [f"find the {a}", f"locate the {a}", f"show me where the {a} {be}", f"draw a box around the {a}",
            f"put a bounding box on the {a}", f"highlight the {a}", f"mark the {a}", f"point out the {a}",
            f"detect the {a}", f"spot the {a}", f"circle the {a}", f"box the {a}", f"pinpoint the {a}",
            f"find where the {a} {be}", f"get the location of the {a}", f"draw a rectangle around the {a}"]  # fmt: skip
    r = rng.random()
    if r < 0.2:
        q = _pick(rng, [f"Where {be} the {a}{_in_ref(rng)}?", f"Where's the {a}{_in_ref(rng)}?",
                        f"Where exactly {be} the {a} located{_in_ref(rng)}?", f"Whereabouts is the {a}{_in_ref(rng)}?",
                        f"Which part of the image has the {a}?", f"Can you find the {a}{_in_ref(rng)}?"])  # fmt: skip
        return f"{_pick(rng, _LEADS)}{q}", ["example.jpg", o]
    if r < 0.3:
        return f"{_pick(rng, ['', 'where ', 'find '])}{a}{_pick(rng, ['?', ' pls', ' - where?', ''])}", [
            "example.jpg",
            o,
        ]
    return _wrap(rng, _pick(rng, acts) + _in_ref(rng)), ["example.jpg", o]


@_generator("Segment the given object")
def _segment_obj(ctx, rng, req):
    o = _obj(ctx, rng)
    a = req.arg(o)
    acts = [f"segment the {a}", f"cut out the {a}", f"mask the {a}", f"make a mask of the {a}", f"isolate the {a}",
            f"separate the {a} from the background", f"extract the {a}", f"give me a pixel mask of the {a}",
            f"select just the {a}", f"outline the {a} with a precise mask", f"create a cutout of the {a}",
            f"get a segmentation mask for the {a}", f"mask out only the {a}", f"clip the {a} out",
            f"trace the exact shape of the {a}"]  # fmt: skip
    if rng.random() < 0.12:
        return f"{_pick(rng, ['mask ', 'cutout: ', 'segment '])}{a}{_pick(rng, ['', ' pls', ' only'])}", [
            "example.jpg",
            o,
        ]
    return _wrap(rng, _pick(rng, acts) + _in_ref(rng)), ["example.jpg", o]


@_generator("Remove Something From The Photo")
def _remove(ctx, rng, req):
    o = _obj(ctx, rng)
    a = req.arg(o)
    acts = [f"remove the {a}", f"erase the {a}", f"get rid of the {a}", f"delete the {a}", f"take the {a} out",
            f"make the {a} disappear", f"wipe out the {a}", f"clear the {a} away", f"edit out the {a}",
            f"cut the {a} out and fill in the background", f"photoshop out the {a}", f"lose the {a}",
            f"remove the {a} completely"]  # fmt: skip
    r = rng.random()
    if r < 0.15:
        q = _pick(rng, [f"What would it look like without the {a}?", f"Can the {a} be removed{_in_ref(rng)}?",
                        f"I don't want the {a}{_in_ref(rng)}, can you take it out?",
                        f"The {a} is ruining the shot{_pick(rng, ['', ', get rid of it', '. remove it?'])}",
                        f"Is there a way to make the {a} vanish{_in_ref(rng)}?"])  # fmt: skip
        return f"{_pick(rng, _LEADS)}{q}", ["example.jpg", o]
    return _wrap(rng, _pick(rng, acts) + _in_ref(rng)), ["example.jpg", o]


_NEW = [
    "cat", "dog", "horse", "red sports car", "tree", "bicycle", "flower pot", "teddy bear", "lamp", "tiger", "robot",
    "giant sunflower", "penguin", "vintage car", "wooden bench", "fountain", "snowman", "pumpkin", "bookshelf",
    "golden retriever", "motorcycle", "palm tree", "cake", "guitar", "hot air balloon", "statue", "rubber duck",
    "parrot", "lion", "blue vase", "pile of books", "spaceship", "dinosaur", "panda", "bunch of balloons", "zebra",
]  # fmt: skip


@_generator("Replace Something From The Photo")
def _replace(ctx, rng, req):
    o = _obj(ctx, rng)
    n = _pick(rng, [x for x in _NEW if x != o])
    a, b = req.arg(o), req.arg(n)
    art = "an" if n[0] in "aeiou" else "a"
    acts = [f"replace the {a} with {art} {b}", f"swap the {a} for {art} {b}", f"change the {a} into {art} {b}",
            f"put {art} {b} where the {a} is", f"substitute {art} {b} for the {a}", f"exchange the {a} with {art} {b}",
            f"switch out the {a} for {art} {b}", f"make the {a} {art} {b} instead", f"turn the {a} into {art} {b}",
            f"take out the {a} and put {art} {b} there", f"replace the {a} by {art} {b}", f"trade the {a} for {art} {b}"]  # fmt: skip
    if rng.random() < 0.15:
        q = _pick(rng, [f"What if the {a} were {art} {b}?", f"How would it look with {art} {b} instead of the {a}?",
                        f"Could there be {art} {b} in place of the {a}?", f"{a} -> {b}"])  # fmt: skip
        return f"{_pick(rng, _LEADS)}{q}", ["example.jpg", o, n]
    return _wrap(rng, _pick(rng, acts) + _in_ref(rng)), ["example.jpg", o, n]


_COLORS = ["red", "blue", "bright yellow", "green", "purple", "pink", "black", "white", "orange", "gold", "silver",
           "teal", "dark brown", "neon green", "pastel blue", "rainbow colored"]  # fmt: skip
_MATERIALS = ["make the {o} wooden", "make the {o} look like glass", "turn the {o} to gold", "make the {o} look like marble",
              "freeze the {o} into ice", "make the {o} look rusty", "make the {o} shiny", "make the {o} look like chocolate",
              "make the {o} furry", "make the {o} metallic", "make the {o} look like lego", "turn the {o} to stone",
              "make the {o} look brand new", "make the {o} look old and worn", "cover the {o} in snow",
              "cover the {o} in flowers", "make the {o} sparkle", "make the {o} transparent", "make the {o} glow"]  # fmt: skip


@_generator("Edit the Given Object")
def _edit_obj(ctx, rng, req):
    o = _obj(ctx, rng)
    r = rng.random()
    if r < 0.45:
        instr = f"make the {o} {_pick(rng, _COLORS)}"
    elif r < 0.8:
        instr = _pick(rng, _MATERIALS).format(o=o)
    else:
        instr = _pick(rng, [f"paint the {o} {_pick(rng, _COLORS)}", f"color the {o} {_pick(rng, _COLORS)}",
                            f"give the {o} a {_pick(rng, ['striped', 'polka dot', 'checkered', 'floral', 'camouflage'])} pattern",
                            f"turn the {o} {_pick(rng, _COLORS)}"])  # fmt: skip
    # the edit instruction is copied whole; the object inside it is the second argument
    i = req.arg(instr)
    only = _pick(rng, ["", "", "", " but keep everything else the same", " and leave the rest alone", ", only that",
                       " without changing anything else", " - nothing else"])  # fmt: skip
    text = _wrap(rng, f"{i}{only}")
    return text, ["example.jpg", o, instr]


_STYLES = [
    "a watercolor painting", "a Van Gogh painting", "pixel art", "an anime scene", "a comic book", "an oil painting",
    "a pencil drawing", "a robot", "a cyberpunk scene", "a winter scene", "a 1980s photo", "a mosaic", "claymation",
    "a charcoal sketch", "a Pixar movie", "a stained glass window", "a vintage postcard", "an impressionist painting",
    "a neon sign", "a sunset scene", "ukiyo-e art", "a low-poly render", "a chalk drawing", "a pop art poster",
    "a fantasy illustration", "a rainy night", "a black and white film still", "a children's book illustration",
    "a Monet painting", "an old photograph", "a marble sculpture", "a video game", "a dream", "a Lego model",
]  # fmt: skip
_STYLE_VERBS = ["make it look like", "turn it into", "make it like", "render it as", "convert it to",
                "transform it into", "restyle it as", "make it resemble", "change the style to", "redo it as",
                "reimagine it as", "make this look like", "turn this into", "style it like"]  # fmt: skip
_STATES = ["make it snowy", "make it night time", "make it look older", "make it autumn", "make it rainy",
           "add a sunset glow", "make it foggy", "make it look like summer", "make it spooky", "make it look futuristic",
           "give it a vintage film look", "make it look hand painted", "make it dreamy and soft"]  # fmt: skip


@_generator("Instruct Image Using Text")
def _style(ctx, rng, req):
    if rng.random() < 0.25:
        instr = _pick(rng, _STATES)
    else:
        instr = f"{_pick(rng, _STYLE_VERBS)} {_pick(rng, _STYLES)}"
    i = req.arg(instr)
    r = rng.random()
    if r < 0.2:
        q = _pick(rng, [f"What would it look like if you {i}?", f"Could you {i}?", f"Is it possible to {i}?",
                        f"Can you {i} for me?", f"For {_ref(rng)}: {i}"])  # fmt: skip
        return f"{_pick(rng, _LEADS)}{q}", ["example.jpg", instr]
    return _wrap(rng, i), ["example.jpg", instr]


_ADDS = ["a hat", "sunglasses", "a red scarf", "a crown", "a birthday cake", "a rainbow", "a small dog", "balloons",
         "a cowboy hat", "a bale of hay", "a bird", "a clock", "a coffee cup", "an umbrella", "a tie", "snow", "flowers",
         "a moon in the sky", "a backpack", "a book", "a kite", "a vase of roses"]  # fmt: skip
_ACTIONS = ["smile", "look angry", "look surprised", "wave", "jump", "sit down", "look sad", "laugh", "hold an umbrella",
            "wear a raincoat", "close their eyes", "look to the left", "raise an arm", "hold a balloon", "sleep"]  # fmt: skip


@_generator("Edit Image Using Text")
def _magicbrush(ctx, rng, req):
    o = _obj(ctx, rng)
    who = _pick(rng, [n for n in ctx["nouns"] if n.split()[-1] in _PEOPLE] or [o])
    r = rng.random()
    if r < 0.3:
        instr = _pick(rng, [f"add {_pick(rng, _ADDS)} next to the {o}", f"put {_pick(rng, _ADDS)} on the {o}",
                            f"add {_pick(rng, _ADDS)}", f"let there be {_pick(rng, _ADDS)} in the background"])  # fmt: skip
    elif r < 0.55:
        instr = _pick(rng, [f"let the {who} {_pick(rng, _ACTIONS)}", f"have the {who} {_pick(rng, _ACTIONS)}",
                            f"make the {who} {_pick(rng, _ACTIONS)}"])  # fmt: skip
    elif r < 0.75:
        instr = _pick(rng, [f"have the {who} wear {_pick(rng, _ADDS)}", f"give the {who} {_pick(rng, _ADDS)}",
                            f"let the {who} hold {_pick(rng, _ADDS)}"])  # fmt: skip
    elif r < 0.88:
        instr = _pick(rng, [f"turn the {o} into {_pick(rng, ['donuts', 'a cat', 'a pile of leaves', 'a bush', 'ice'])}",
                            f"remove the {o} and add {_pick(rng, _ADDS)}", f"make the {o} bigger", f"make the {o} smaller",
                            f"let the {o} be broken"])  # fmt: skip
    else:
        instr = _pick(rng, [f"put the {o} on fire", f"let the {o} be wet", f"have the {o} be upside down",
                            f"make the {o} float in the air", f"let the {o} melt"])  # fmt: skip
    i = req.arg(instr)
    if rng.random() < 0.2:
        q = _pick(rng, [f"Edit {_ref(rng)}: {i}", f"Change {_ref(rng)} so that you {i}",
                        f"Could you {i}?", f"Small edit: {i}", f"Can you {i}{_in_ref(rng)}?"])  # fmt: skip
        return f"{_pick(rng, _LEADS)}{q}", ["example.jpg", instr]
    return _wrap(rng, i), ["example.jpg", instr]


_QUESTIONS = [
    "what color is the {o}?", "how many {os} are there?", "is the {o} on the left or the right?", "what is the {o} doing?",
    "what is next to the {o}?", "what material is the {o} made of?", "is the {o} big or small?", "is it daytime or night?",
    "what's the weather like?", "where was this taken?", "is anyone holding the {o}?", "what is behind the {o}?",
    "how many people are there?", "is the {o} moving?", "what season is it?", "what time of day is it?",
    "is there a {n} anywhere?", "what shape is the {o}?", "is the {o} in the foreground?", "what room is this?",
    "does the {o} look new or old?", "is the {o} clean?", "what is in front of the {o}?", "who is near the {o}?",
    "are there any animals?", "what is the main color of the scene?", "is this indoors or outdoors?",
    "what is the {o} made of?", "is the {o} facing the camera?", "what's on top of the {o}?",
    "is there more than one {o}?", "what sport is being played?", "what kind of {o} is it?", "how old does the {o} look?",
    "what colour is the {o}?", "which side of the picture is the {o} on?", "is the {o} sitting or standing?",
    "roughly how big is the {o}?", "does the {o} look wet?", "what is the {o} next to?", "what is under the {o}?",
    "is the {o} in the shade or in the sun?", "what's the {o} for?", "are there any {os} besides the main one?",
    "is the {o} the biggest thing here?", "what mood does the scene have?", "is the photo blurry?",
    "what is the person wearing?", "is anybody smiling?", "what is the background like?", "how many {os} can you count?",
    "is the {o} closer than the {n} would be?", "do you see any {os}?", "is there a {n} or a {o}?",
    "what's the {o} resting on?", "what's happening with the {o}?", "is it sunny?", "are the lights on?",
    "which animal is this?", "what brand is the {o}?", "does the {o} have any text on it?", "what is the ground made of?",
    "how crowded is the place?", "is the {o} broken?", "is the {o} empty or full?", "what's to the left of the {o}?",
]  # fmt: skip
_Q_LEADS = ["", "", "", "", "Quick question: ", "Looking at the photo, ", "In this image, ", "About the picture: ",
            "Question about the photo - ", "Based on the image, ", "From the picture, ", "Tell me, ", "I'm curious, ",
            "Can you tell me: ", "Hey, ", "One question: ", "Look at the image. ", "Check the picture: ",
            "I have a question: ", "Can you answer this: ", "Help me figure this out - ", "Based on what you see, ",
            "Please look at my photo: ", "Hmm, ", "So ", "Okay, ", "Answer this about the pic: ", "Hi! ",
            "From what you can see, ", "In the photo I sent, ", "Using the image, ", "Q: ", "Just wondering, ",
            "Not sure about this one: ", "Need your eyes on this: ", "Here's my question - "]  # fmt: skip
_Q_TAILS = ["", "", "", "", "", "", " Thanks!", " Just curious.", " Please answer briefly.", " I can't tell.",
            " Thank you.", " (in the picture)", " Short answer please.", " I'm not sure from here.", " thx",
            " Be honest.", " One word is fine.", " Asking for a friend.", " Can't figure it out."]  # fmt: skip


@_generator("Answer Question About The Image")
def _vqa(ctx, rng, req):
    o = _obj(ctx, rng)
    n = _pick(rng, [x for x in _NEW if x != o])
    q = _pick(rng, _QUESTIONS).format(o=o, n=n, os=_plural(o))
    if rng.random() < 0.75:
        q = q[:1].upper() + q[1:]
    i = req.arg(q)
    tail = _pick(rng, _Q_TAILS)
    return f"{_pick(rng, _Q_LEADS)}{i}{tail}", ["example.jpg", q]


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + ("es" if not noun.endswith("s") or noun.endswith("ss") else "")
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


_BOX_WORDS = ["region", "area", "part", "box", "rectangle", "patch", "section", "window", "zone"]


@_generator("Crop Image")
def _crop(ctx, rng, req):
    x1, y1 = rng.randrange(0, 300), rng.randrange(0, 300)
    x2, y2 = x1 + rng.randrange(40, 340), y1 + rng.randrange(40, 340)
    box = _pick(rng, [f"[{x1}, {y1}, {x2}, {y2}]"] * 4 + [f"[{x1},{y1},{x2},{y2}]"])
    b = req.arg(box)
    o = _obj(ctx, rng)
    w = _pick(rng, _BOX_WORDS)
    acts = [f"crop {_ref(rng)} to {b}", f"cut out the {w} {b}", f"keep only the {w} inside {b}", f"zoom in on {b}",
            f"trim {_ref(rng)} to the box {b}", f"crop the {w} {b}", f"crop out the {w} at {b}",
            f"give me just the {w} {b}", f"crop it to the coordinates {b}", f"cut {_ref(rng)} down to {b}",
            f"crop around the {o} at {b}", f"isolate the {w} {b} of {_ref(rng)}", f"crop to {b}",
            f"zoom into the {w} {b}", f"trim everything outside {b}", f"snip out the {w} {b}",
            f"keep just {b} and throw away the rest", f"extract the {w} {b} from {_ref(rng)}",
            f"cut away everything except {b}", f"frame just the {w} {b}", f"clip {_ref(rng)} to {b}",
            f"make a close-up of the {w} {b}", f"select the {w} {b} and discard the rest",
            f"show me only the {w} {b}", f"enlarge the {w} {b}", f"cut {b} out of {_ref(rng)}"]  # fmt: skip
    if rng.random() < 0.1:
        return f"{_pick(rng, ['crop ', 'crop: ', 'zoom ', 'just ', 'only ', 'cut to '])}{b}", ["example.jpg", box]
    return _wrap(rng, _pick(rng, acts)), ["example.jpg", box]


_SCENES = [
    "a cozy cabin in a snowy forest", "a futuristic city at night", "a cat wearing a tiny hat", "a dragon flying over mountains",
    "a bowl of ramen on a wooden table", "an astronaut riding a horse", "a lighthouse during a storm", "a field of sunflowers",
    "a robot reading a book in a library", "a beach at sunset with palm trees", "a steampunk airship", "a fox in the autumn leaves",
    "an old man playing chess in the park", "a red bicycle leaning on a brick wall", "a castle on a floating island",
    "a sleepy puppy on a couch", "a busy market street in Morocco", "a whale jumping out of the ocean", "a treehouse in the jungle",
    "a cup of coffee with latte art", "a neon-lit diner", "two kids flying a kite on a hill", "a waterfall in a rainforest",
    "a vintage car on a desert road", "a penguin on an iceberg", "a wizard casting a spell", "a mountain lake at dawn",
]  # fmt: skip
_GEN_STYLES = ["", "", "", "", ", in watercolor", ", oil painting style", ", photorealistic", ", cartoon style",
               ", digital art", ", at sunset", ", in the style of a children's book", ", 4k", ", black and white photo",
               ", anime style", ", highly detailed", ", in the rain"]  # fmt: skip
_SETTINGS = ["in a park", "on the moon", "under the sea", "in a snowy field", "on a city street", "in a kitchen",
             "at the beach", "in the desert", "in outer space", "on a mountain top", "in a forest", "at night"]  # fmt: skip


def _prompt(ctx: dict, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.35:
        p = ctx["subject"]
    elif r < 0.6:
        o = _obj(ctx, rng)
        p = f"{_adj_noun(rng, o, ['giant', 'tiny', 'golden', 'blue', 'old', 'cute', 'glowing', 'happy'])} {_pick(rng, _SETTINGS)}"
    else:
        p = _pick(rng, _SCENES)
    return p + _pick(rng, _GEN_STYLES)


@_generator("Generate Image From User Input Text")
def _text2image(ctx, rng, req):
    prompt = _prompt(ctx, rng)
    p = req.arg(prompt)
    acts = [f"draw {p}", f"generate an image of {p}", f"make a picture of {p}", f"create an image showing {p}",
            f"paint {p}", f"render {p}", f"produce an illustration of {p}", f"sketch me {p}", f"design an image of {p}",
            f"create art of {p}", f"make me a photo of {p}", f"generate a picture: {p}", f"imagine {p} and draw it",
            f"whip up an image of {p}", f"visualize {p}"]  # fmt: skip
    r = rng.random()
    if r < 0.15:
        q = _pick(rng, [f"What would {p} look like? Draw it.", f"Can you show me what {p} looks like?",
                        f"I want a picture of {p}.", f"I'd love to see an image of {p}.", f"Image of {p}, please.",
                        f"New image: {p}", f"Show me a new picture of {p}."])  # fmt: skip
        return f"{_pick(rng, _LEADS)}{q}", [prompt]
    return _wrap(rng, _pick(rng, acts)), [prompt]


# ----------------------------------------------------------------------------------------------
# Condition tools: one- or two-step requests; the builder runs the condition tool first.

# tool -> (condition nouns, condition verbs (first step, {ref}), "same X" phrases)
_CONDITION_WORDS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "Generate Image Condition On Canny Image": (
        ["edges", "edge map", "outlines", "contours", "canny edges", "line drawing of the borders", "outline"],
        ["find the edges of {ref}", "detect the edges", "trace the outlines of {ref}", "get the canny edges",
         "extract the contours of {ref}", "do edge detection on {ref}", "make an edge map"],
        ["the same outlines", "the same edges", "the same contours"],
    ),
    "Generate Image Condition On Depth": (
        ["depth map", "distance map", "3D structure", "depth information", "z-depth", "near/far map", "3D layout"],
        ["estimate the depth of {ref}", "get a depth map", "work out how far away everything is in {ref}",
         "figure out what is near and far in {ref}", "compute the distance map of {ref}",
         "measure how far things are from the camera in {ref}", "recover the 3D structure of {ref}"],
        ["the same depth", "the same 3D layout", "the same distances", "the same near and far structure",
         "the same spatial layout"],
    ),
    "Generate Image Condition On Sketch Image": (
        ["scribble", "sketch", "doodle", "scribble map", "rough lines", "hand-drawn scribble"],
        ["turn {ref} into a scribble", "make a rough sketch of {ref}", "get a scribble", "doodle over {ref}",
         "scribble out the main shapes of {ref}", "reduce {ref} to a scribble"],
        ["that scribble", "the same rough lines", "those rough lines", "the same doodle"],
    ),
    "Generate Image Condition On Segmentations": (
        ["segmentation", "segments", "segmentation map", "region masks", "layout of segments"],
        ["segment {ref}", "split {ref} into segments", "get the segmentation", "segment everything in {ref}",
         "divide {ref} into regions"],
        ["the same segments", "the same layout of regions", "that segmentation"],
    ),
    "Generate Image Condition On Pose Image": (
        ["pose", "body position", "skeleton", "posture", "keypoints", "stick figure", "joint positions"],
        ["detect the pose in {ref}", "get the human pose", "find the body keypoints in {ref}", "extract the skeleton",
         "figure out the person's posture in {ref}"],
        ["the same pose", "that posture", "the same body position", "that skeleton"],
    ),
    "Generate Image Condition On Soft Hed Boundary Image": (
        ["soft edges", "HED boundaries", "soft boundary map", "HED map", "soft outlines", "fuzzy boundaries"],
        ["find the soft edges of {ref}", "run HED on {ref}", "get the soft boundaries", "detect the HED boundaries",
         "make a soft edge map"],
        ["the same soft edges", "those soft boundaries", "the same HED outline"],
    ),
    "Generate Image Condition On Normal Map": (
        ["normal map", "surface normals", "normals", "surface orientation", "bump map"],
        ["estimate the surface normals of {ref}", "get a normal map", "predict the normals", "compute the normal map of {ref}",
         "work out the surface orientation in {ref}"],
        ["the same surface normals", "that normal map", "the same surface shape"],
    ),
    "Generate Image Condition On Line Image": (
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


def _condition_desc(tool: str, ctx: dict, rng: random.Random) -> str:
    r = rng.random()
    if tool == "Generate Image Condition On Pose Image":
        d = _pick(rng, _HUMANS)
    elif r < 0.55:
        d = _pick(rng, _THINGS)
    elif r < 0.8:
        o = _obj(ctx, rng)
        d = _adj_noun(rng, o, ["golden", "glass", "futuristic", "wooden", "snowy", "neon", "giant", "robotic"])
    else:
        d = f"{_pick(rng, _THINGS)} {_pick(rng, _SETTINGS)}"
    return d + _pick(rng, ["", "", "", "", ", photorealistic", ", in watercolor", " at sunset", ", anime style"])


def _condition_gen(tool: str) -> Gen:
    nouns, steps, sames = _CONDITION_WORDS[tool]

    def gen(ctx: dict, rng: random.Random, req: _Req) -> tuple[str, list[str]]:
        desc = _condition_desc(tool, ctx, rng)
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


for _tool in _CONDITION_WORDS:
    GENERATORS[_tool] = _condition_gen(_tool)


# ----------------------------------------------------------------------------------------------
# Surface noise: casing and typos on free text only.

_KEYS_NEAR = {"a": "s", "e": "r", "i": "o", "o": "p", "t": "r", "n": "m", "s": "a", "r": "e", "h": "j", "l": "k"}


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.randrange(4)
    if op == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 1:
        return word[:i] + word[i + 1 :]
    if op == 2:
        return word[:i] + word[i] + word[i:]
    return word[:i] + _KEYS_NEAR.get(word[i], word[i]) + word[i + 1 :]


def _surface(text: str, rng: random.Random, typo_rate: float) -> str:
    """Casing and typos on the free text (argument markers and the text inside them are untouched)."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r" ([,.?!;:])", r"\1", text)
    text = text[:1].upper() + text[1:] if text[:1] != "\x00" else text
    r = rng.random()
    parts = _ARG_RE.split(text)  # even indexes: free text; odd: argument numbers
    if r < 0.18:
        parts = [p.lower() if k % 2 == 0 else p for k, p in enumerate(parts)]
    elif r < 0.21:
        parts = [p.upper() if k % 2 == 0 else p for k, p in enumerate(parts)]
    elif r < 0.25:
        parts = [p.rstrip(".!") if k == len(parts) - 1 else p for k, p in enumerate(parts)]
    if rng.random() < typo_rate:
        for _ in range(1 + (rng.random() < 0.3)):
            free = [k for k in range(0, len(parts), 2) if re.search(r"[A-Za-z]{4,}", parts[k])]
            if not free:
                break
            k = _pick(rng, [str(x) for x in free])
            words = re.split(r"(\W+)", parts[int(k)])
            idx = [j for j, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
            if idx:
                j = idx[rng.randrange(len(idx))]
                words[j] = _typo(words[j], rng)
                parts[int(k)] = "".join(words)
    return "".join(p if k % 2 == 0 else _ARG.format(p) for k, p in enumerate(parts))


_KEEP_CASE = ("I ", "I'", "HED", "OCR", "M-LSD", "ADE20K", "Van", "Pixar", "Monet", "\x00")


def _tidy(text: str) -> str:
    """Sentence case after lead-ins: "Hey, can you ..." / "Here's a photo. Can you ..."."""
    leads = sorted({x for x in [*_LEADS, *_FRONT_REFS, *_Q_LEADS, *_NEG_LEADS] if x.strip()}, key=len, reverse=True)
    pos = 0
    for _ in range(3):
        rest = text[pos:]
        lead = next((x.strip() for x in leads if rest.lower().startswith(x.strip().lower() + " ")), None)
        if lead is None:
            break
        pos += len(lead) + 1
        nxt = text[pos:]
        if not nxt or nxt.startswith(_KEEP_CASE) or nxt[1:2].isupper():
            continue
        first = nxt[0].upper() if lead.endswith((".", "!", "?")) else nxt[0].lower()
        text = text[:pos] + first + nxt[1:]
    return text


def make_request(
    tool: str, caption: str, rng: random.Random, typo_rate: float = 0.08, multi_step: float = 0.35
) -> tuple[str, list[str]]:
    """One ``(request, args)`` pair for ``tool`` on an image with ``caption`` (args as in the reply line).

    Raises:
        KeyError: the tool has no generator.
    """
    ctx = {"caption": caption, "subject": _subject(caption), "nouns": _nouns(caption), "multi_step": multi_step}
    req = _Req()
    text, args = GENERATORS[tool](ctx, rng, req)
    text = _surface(_tidy(text[:1].upper() + text[1:]), rng, typo_rate)
    text = _ARG_RE.sub(lambda m: req.spans[int(m.group(1))], text)
    return text.replace('"', "'").replace("\n", " "), args


def teacher_lines(
    caption: str,
    tools: Sequence[str],
    rng: random.Random,
    noise: float = 0.0,
    typo_rate: float = 0.08,
    multi_step: float = 0.35,
) -> str:
    """A teacher reply for one caption: one numbered line per tool in ``tools`` (published format).

    Args:
        caption: the image caption.
        tools: tool names to write an instruction for (each must have a generator).
        rng: random source.
        noise: share of lines whose request is written for another tool (mislabelled).
        typo_rate: share of requests with character slips in the free text.
        multi_step: share of condition-tool requests phrased as two steps.
    """
    lines = []
    for i, tool in enumerate(tools, 1):
        request, args = make_request(tool, caption, rng, typo_rate, multi_step)
        if noise and rng.random() < noise:
            other = _pick(rng, [t for t in sorted(GENERATORS) if t != tool])
            request, _ = make_request(other, caption, rng, typo_rate, multi_step)
        lines.append(f'{i}. "{request}", [{tool}, {", ".join(args)}]')
    return "\n".join(lines)


def generator_tools() -> list[str]:
    """Every registered tool that has a generator, in registry order."""
    from g4t.data.catalog import registered_tools

    return [n for n in registered_tools() if n in GENERATORS]


def missing_generators() -> list[str]:
    """Registered tools without a generator (kept empty by a test)."""
    from g4t.data.catalog import registered_tools

    return [n for n in registered_tools() if n not in GENERATORS]


def extra_tools() -> list[str]:
    """Registered tools beyond the 26 published teacher tools (``generate_annotations.py --tools``)."""
    from g4t.data.teacher import published_tool_names

    published = set(published_tool_names())
    return [n for n in generator_tools() if n not in published]


def write_replies(
    captions: Sequence[dict],
    path: str | Path,
    tools: Sequence[str] | None = None,
    tools_per_caption: int = 0,
    noise: float = 0.0,
    seed: int = 0,
    typo_rate: float = 0.08,
    multi_step: float = 0.35,
) -> int:
    """Write ``get_instruction.py``-style JSONL replies for a caption list; returns the number of lines.

    Args:
        captions: ``{"file_name", "caption"}`` records (the published caption-list format).
        path: output JSONL.
        tools: tools to cover (default: the 26 published teacher tools; ``generator_tools()`` for all).
        tools_per_caption: tools drawn per caption (0: all of them, as the published prompt asks).
        noise: share of mislabelled lines (see ``teacher_lines``).
        seed: random seed (same inputs + seed = same bytes).
        typo_rate: share of requests with character slips (never inside arguments).
        multi_step: share of condition-tool requests phrased as two steps.
    """
    from g4t.data.teacher import published_tool_names

    rng = random.Random(seed)
    tools = list(tools or published_tool_names())
    missing = [t for t in tools if t not in GENERATORS]
    if missing:
        raise ValueError(f"no offline generator for {missing}")
    n = 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for item in captions:
            chosen = rng.sample(tools, tools_per_caption) if 0 < tools_per_caption < len(tools) else tools
            reply = teacher_lines(item["caption"], chosen, rng, noise, typo_rate, multi_step)
            n += len(chosen)
            f.write(
                json.dumps({"file_name": item["file_name"], "caption": item["caption"], "instructions": reply}) + "\n"
            )
    return n


# ----------------------------------------------------------------------------------------------
# Negatives: no-tool exchanges in Alpaca format (``--insert_alpaca``).

_GREETINGS = [
    ("hi", "Hi! How can I help you today?"), ("hello", "Hello! What would you like to do?"),
    ("hey there", "Hey! What can I do for you?"), ("good morning", "Good morning! How can I help?"),
    ("good evening", "Good evening! What can I do for you?"), ("hi, how are you?", "I'm doing well, thanks for asking. How can I help?"),
    ("how's it going?", "All good here! What would you like to do?"), ("yo", "Hi there! What can I help you with?"),
    ("hello, nice to meet you", "Nice to meet you too! How can I help?"), ("good afternoon!", "Good afternoon! What can I do for you?"),
]  # fmt: skip
_THANKS = [
    ("thanks", "You're welcome!"), ("thank you so much", "You're very welcome! Happy to help."),
    ("great, thanks!", "Glad I could help!"), ("that's perfect, thank you", "Great, I'm glad it works for you."),
    ("awesome", "Glad you like it!"), ("cool, thanks a lot", "Anytime!"), ("nice work", "Thank you! Anything else?"),
    ("ok got it", "Great. Let me know if you need anything else."), ("thx", "You're welcome!"),
    ("perfect", "Glad to hear it! Anything else I can do?"), ("bye", "Goodbye! Have a great day."),
    ("that's all for now", "Okay! Feel free to come back anytime."), ("see you later", "See you! Take care."),
]  # fmt: skip
_SMALL_TALK = [
    ("who are you?", "I'm an AI assistant that can chat and work with images using visual tools."),
    ("what can you do?", "I can answer questions, describe and edit images, detect objects and generate new pictures."),
    ("are you a human?", "No, I'm an AI assistant."),
    ("what's your name?", "I'm an AI assistant. You can just call me assistant."),
    ("do you like your job?", "I enjoy helping people, so yes!"),
    ("can you remember what we talked about?", "I can see our conversation so far in this chat."),
    ("tell me a joke", "Why did the scarecrow win an award? Because he was outstanding in his field."),
    ("tell me something interesting", "Octopuses have three hearts and blue blood."),
    ("I'm bored", "How about we try something fun, like turning one of your photos into a painting?"),
    ("how old are you?", "I'm an AI, so I don't have an age."),
    ("do you sleep?", "No, I don't need sleep. I'm here whenever you need me."),
    ("what's your favorite color?", "I don't have personal preferences, but many people love blue."),
    ("can you keep a secret?", "I don't share our conversation with anyone, but avoid sending sensitive data."),
    ("I had a long day", "Sorry to hear that. I hope you get some rest soon."),
    ("you're helpful", "Thank you! I'm happy to help."),
    ("what's the weather today?", "I can't check live weather, but a weather app or website will have the forecast."),
    ("what time is it?", "I don't have access to a clock, but your device will show the current time."),
    ("give me some advice for taking better photos", "Use natural light, keep the horizon level and get closer to your subject."),
    ("recommend a good book", "You might enjoy 'The Little Prince' by Antoine de Saint-Exupery."),
    ("how do I stay focused?", "Work in short blocks with breaks, and put your phone away while you work."),
    ("what should I cook tonight?", "How about a simple pasta with tomatoes, garlic and basil?"),
    ("any tips for learning a language?", "Practice a little every day and talk with native speakers when you can."),
]  # fmt: skip
_FACTS = [
    ("what is the capital of france?", "The capital of France is Paris."),
    ("what is the capital of japan?", "The capital of Japan is Tokyo."),
    ("what is the capital of italy?", "The capital of Italy is Rome."),
    ("what is the capital of canada?", "The capital of Canada is Ottawa."),
    ("what is the capital of australia?", "The capital of Australia is Canberra."),
    ("what is the capital of germany?", "The capital of Germany is Berlin."),
    ("what is the capital of spain?", "The capital of Spain is Madrid."),
    ("what is the capital of egypt?", "The capital of Egypt is Cairo."),
    ("who wrote romeo and juliet?", "William Shakespeare wrote Romeo and Juliet."),
    ("who painted the mona lisa?", "Leonardo da Vinci painted the Mona Lisa."),
    ("how many legs does a spider have?", "A spider has eight legs."),
    ("how many continents are there?", "There are seven continents."),
    ("what is the largest planet in our solar system?", "Jupiter is the largest planet in our solar system."),
    ("what is the boiling point of water?", "Water boils at 100 degrees Celsius at sea level."),
    ("what gas do plants absorb?", "Plants absorb carbon dioxide."),
    ("how many days are in a leap year?", "A leap year has 366 days."),
    ("what is the longest river in the world?", "The Nile is usually listed as the longest river in the world."),
    ("what is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("who was the first person on the moon?", "Neil Armstrong was the first person to walk on the moon, in 1969."),
    ("what is the fastest land animal?", "The cheetah is the fastest land animal."),
    ("what is photosynthesis?", "Photosynthesis is how plants turn light, water and carbon dioxide into sugar and oxygen."),
    ("why is the sky blue?", "Air scatters blue sunlight more than red light, so the sky looks blue."),
    ("what is a noun?", "A noun is a word for a person, place, thing or idea."),
    ("how many hours are in a week?", "A week has 168 hours."),
    ("what is the tallest mountain in the world?", "Mount Everest is the tallest mountain above sea level."),
    ("what language is spoken in brazil?", "Portuguese is the main language of Brazil."),
    ("what does a camera lens do?", "A lens focuses light onto the sensor or film to form a sharp image."),
    ("what is a pixel?", "A pixel is the smallest dot of color that makes up a digital image."),
    ("what does jpeg stand for?", "JPEG stands for Joint Photographic Experts Group."),
    ("what is the difference between a photo and a painting?", "A photo is captured with a camera, a painting is made by hand with paint."),
    ("how many colors are in a rainbow?", "A rainbow is usually described with seven colors."),
    ("what is the freezing point of water in fahrenheit?", "Water freezes at 32 degrees Fahrenheit."),
    ("what do bees make?", "Bees make honey and beeswax."),
    ("what is the largest ocean?", "The Pacific Ocean is the largest ocean."),
    ("what are the primary colors?", "The traditional primary colors are red, yellow and blue."),
]  # fmt: skip
_WORDS = [
    ("happy", "glad", "sad"), ("big", "large", "small"), ("fast", "quick", "slow"), ("begin", "start", "end"),
    ("difficult", "hard", "easy"), ("smart", "clever", "dumb"), ("quiet", "silent", "loud"), ("old", "ancient", "new"),
    ("beautiful", "pretty", "ugly"), ("cold", "chilly", "hot"),
]  # fmt: skip
_TRANSLATE = [("hello", "Spanish", "Hola"), ("thank you", "French", "Merci"), ("good night", "German", "Gute Nacht"),
              ("cat", "Spanish", "Gato"), ("water", "French", "Eau"), ("friend", "Italian", "Amico"),
              ("good morning", "Spanish", "Buenos dias"), ("yes", "German", "Ja")]  # fmt: skip
_USES = {
    "dog": "Dogs are kept as pets and companions, and some work as guide, herding or rescue dogs.",
    "cat": "Cats are mostly kept as pets; they are also good at catching mice.",
    "skateboard": "A skateboard is a board on wheels used for riding and doing tricks.",
    "surfboard": "A surfboard is used to ride waves in the ocean.",
    "umbrella": "An umbrella protects you from rain or sun.",
    "kite": "A kite is flown in the wind for fun, held by a long string.",
    "bicycle": "A bicycle is a two-wheeled vehicle you ride by pedaling.",
    "bus": "A bus carries many passengers along a fixed route.",
    "train": "A train carries passengers or freight along railway tracks.",
    "laptop": "A laptop is a portable computer for work, browsing and entertainment.",
    "clock": "A clock shows the time.",
    "vase": "A vase holds flowers or serves as decoration.",
    "bench": "A bench is a long seat, often found in parks.",
    "frisbee": "A frisbee is a flying disc thrown and caught for fun or sport.",
    "horse": "Horses are ridden, used for farm work and for sport.",
    "pizza": "Pizza is a baked flatbread with toppings such as tomato sauce and cheese.",
    "sink": "A sink is a basin with a tap used for washing.",
    "toilet": "A toilet is a bathroom fixture for disposing of human waste.",
    "giraffe": "Giraffes are the tallest land animals; their long necks reach leaves high in trees.",
    "elephant": "Elephants are the largest land animals and use their trunks to eat, drink and grab things.",
    "zebra": "Zebras are wild horses of Africa known for their black and white stripes.",
    "boat": "A boat carries people or goods on water.",
    "airplane": "An airplane carries people and cargo through the air.",
    "couch": "A couch is a padded seat for several people.",
    "refrigerator": "A refrigerator keeps food cold and fresh.",
    "oven": "An oven is used to bake, roast or heat food.",
    "banana": "Bananas are a sweet fruit rich in potassium.",
    "broccoli": "Broccoli is a green vegetable related to cabbage.",
    "tennis": "Tennis is a racket sport played by two or four players over a net.",
    "baseball": "Baseball is a bat-and-ball game between two teams of nine players.",
    "computer": "A computer processes information and runs programs.",
    "phone": "A phone lets you call people and, on smartphones, use apps and the internet.",
    "car": "A car is a road vehicle used to carry a few people.",
    "truck": "A truck carries goods by road.",
    "table": "A table is furniture with a flat top for eating, working or holding things.",
    "chair": "A chair is a seat for one person.",
    "bed": "A bed is furniture for sleeping.",
    "cake": "Cake is a sweet baked dessert, often eaten at celebrations.",
    "sandwich": "A sandwich is food placed between slices of bread.",
}  # fmt: skip
_NEG_LEADS = ["", "", "", "", "", "hey, ", "quick question: ", "btw ", "just wondering, ", "ok, ", "unrelated, but ",
              "off topic: ", "random question - ", "by the way, "]  # fmt: skip


def _negative(rng: random.Random, caption: str) -> tuple[str, str]:
    r = rng.random()
    if r < 0.12:
        q, a = _pick(rng, _GREETINGS)  # type: ignore[arg-type]
    elif r < 0.24:
        q, a = _pick(rng, _THANKS)  # type: ignore[arg-type]
    elif r < 0.42:
        q, a = _pick(rng, _SMALL_TALK)  # type: ignore[arg-type]
    elif r < 0.66:
        q, a = _pick(rng, _FACTS)  # type: ignore[arg-type]
    elif r < 0.78:
        x, y = rng.randrange(2, 60), rng.randrange(2, 60)
        op = rng.randrange(3)
        sym, word, val = [("+", "plus", x + y), ("-", "minus", x - y), ("*", "times", x * y)][op]
        q = _pick(rng, [f"what is {x} {word} {y}?", f"what's {x}{sym}{y}?", f"calculate {x} {sym} {y}",
                        f"how much is {x} {word} {y}?"])  # fmt: skip
        a = f"{x} {word} {y} is {val}."
    elif r < 0.86:
        w, syn, ant = _pick(rng, _WORDS)  # type: ignore[misc]
        if rng.random() < 0.5:
            q, a = f"what's a synonym for {w}?", f"A synonym for {w} is {syn}."
        else:
            q, a = f"what is the opposite of {w}?", f"The opposite of {w} is {ant}."
    elif r < 0.93:
        word, lang, out = _pick(rng, _TRANSLATE)  # type: ignore[misc]
        q, a = f"how do you say '{word}' in {lang}?", f"'{word.capitalize()}' in {lang} is '{out}'."
    elif r < 0.96:
        n = rng.randrange(2, 30)
        q, a = f"how many centimeters are in {n} meters?", f"There are {n * 100} centimeters in {n} meters."
    else:
        nouns = [w for w in _nouns(caption) if " " not in w]
        known = [w for w in nouns if w in _USES]
        if known and rng.random() < 0.6:
            w = _pick(rng, known)
            q, a = (
                _pick(rng, [f"what is a {w} used for?", f"what's a {w} for?", f"tell me about {w}s in general"]),
                _USES[w],
            )
        else:
            w = _pick(rng, nouns or ["camera"])
            q, a = f"how do you spell {w}?", f"{w.capitalize()} is spelled {'-'.join(w.upper())}."
    q = _pick(rng, _NEG_LEADS) + q
    q = q[:1].upper() + q[1:] if rng.random() < 0.7 else q
    # no typos where a word of the question is the subject of the answer (spelling, synonyms, numbers)
    q = _surface(_tidy(q), rng, 0.08 if r < 0.66 else 0.0).replace('"', "'")
    return q, a


def negative_items(captions: Sequence[dict], n: int, seed: int = 0) -> list[dict]:
    """``n`` Alpaca items ``{"instruction", "input": "", "output"}`` of exchanges that need no tool.

    Args:
        captions: caption records (only used to seed variety; the builder attaches captions itself).
        n: number of items.
        seed: random seed.
    """
    rng = random.Random(seed)
    caps = [c["caption"] for c in captions] or [""]
    return [
        dict(zip(("instruction", "output"), _negative(rng, caps[i % len(caps)]), strict=True)) | {"input": ""}
        for i in range(n)
    ]


def write_negatives(captions: Sequence[dict], path: str | Path, n: int | None = None, seed: int = 0) -> int:
    """Write an Alpaca-format JSON list of no-tool exchanges for ``--insert_alpaca``; returns the count.

    Args:
        captions: caption records (``n`` defaults to 10 per caption).
        path: output JSON.
        n: number of items.
        seed: random seed (same inputs + seed = same bytes).
    """
    items = negative_items(captions, 10 * len(captions) if n is None else n, seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(items, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(items)
