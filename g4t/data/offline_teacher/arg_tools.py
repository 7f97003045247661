"""Generators of the tools with an object or text argument (detection, editing, VQA, crop, text-to-image)."""

from __future__ import annotations

import random

from .image_tools import _generator
from .words import _LEADS, _PEOPLE, _PURPOSES, _Q_LEADS, _TAILS, _adj_noun, _pick, _plural, _plural_like, _ref

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


_BOX_WORDS = ["region", "area", "part", "box", "rectangle", "patch", "section", "window", "zone"]


# Regions in words (the argument is the phrase as the request says it; g4t.tools.crop reads it).
_REGION_PHRASES = {
    "left half": ["left half", "left side", "left half"], "right half": ["right half", "right side", "right half"],
    "top half": ["top half", "upper half", "top part"], "bottom half": ["bottom half", "lower half", "bottom part"],
    "top left corner": ["top left corner", "upper left corner", "top-left corner", "top left"],
    "top right corner": ["top right corner", "upper right corner", "top-right corner", "top right"],
    "bottom left corner": ["bottom left corner", "lower left corner", "bottom-left corner", "bottom left"],
    "bottom right corner": ["bottom right corner", "lower right corner", "bottom-right corner", "bottom right"],
    "center": ["center", "middle", "centre", "central part"],
}  # fmt: skip


def _crop_region(ctx, rng, req):
    phrase = _pick(rng, _pick(rng, list(_REGION_PHRASES.values())))
    r = req.arg(phrase)
    o = _obj(ctx, rng)
    acts = [f"crop the {r} of {_ref(rng)}", f"crop {_ref(rng)} to the {r}", f"keep only the {r}",
            f"cut out the {r}", f"zoom in on the {r}", f"give me just the {r} of {_ref(rng)}",
            f"crop to the {r}", f"show me only the {r}", f"trim it down to the {r}",
            f"crop the {r} where the {o} is", f"i only want the {r} of {_ref(rng)}", f"cut {_ref(rng)} to its {r}",
            f"make a close-up of the {r}", f"drop everything but the {r}"]  # fmt: skip
    if rng.random() < 0.1:
        return f"{_pick(rng, ['crop ', 'crop: ', 'just the ', 'only the '])}{r}", ["example.jpg", phrase]
    return _wrap(rng, _pick(rng, acts)), ["example.jpg", phrase]


@_generator("Crop Image")
def _crop(ctx, rng, req):
    if rng.random() < 0.5:
        return _crop_region(ctx, rng, req)
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
