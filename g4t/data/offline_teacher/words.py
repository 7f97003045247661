"""Shared text helpers: argument markers, caption nouns, request parts (refs, leads), typos and casing."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

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


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + ("es" if not noun.endswith("s") or noun.endswith("ss") else "")
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


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
# lead-ins of VQA questions and of chit-chat negatives (``_tidy`` knows every lead-in)
_Q_LEADS = ["", "", "", "", "Quick question: ", "Looking at the photo, ", "In this image, ", "About the picture: ",
            "Question about the photo - ", "Based on the image, ", "From the picture, ", "Tell me, ", "I'm curious, ",
            "Can you tell me: ", "Hey, ", "One question: ", "Look at the image. ", "Check the picture: ",
            "I have a question: ", "Can you answer this: ", "Help me figure this out - ", "Based on what you see, ",
            "Please look at my photo: ", "Hmm, ", "So ", "Okay, ", "Answer this about the pic: ", "Hi! ",
            "From what you can see, ", "In the photo I sent, ", "Using the image, ", "Q: ", "Just wondering, ",
            "Not sure about this one: ", "Need your eyes on this: ", "Here's my question - "]  # fmt: skip
_NEG_LEADS = ["", "", "", "", "", "hey, ", "quick question: ", "btw ", "just wondering, ", "ok, ", "unrelated, but ",
              "off topic: ", "random question - ", "by the way, "]  # fmt: skip


def _ref(rng: random.Random) -> str:
    return _pick(rng, _REFS)


class _Req:
    """A request under construction: free text plus protected spans (copied arguments)."""

    def __init__(self) -> None:
        self.spans: list[str] = []

    def arg(self, text: str) -> str:
        self.spans.append(text)
        return _ARG.format(len(self.spans) - 1)


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
