"""Negatives: no-tool chit-chat exchanges in Alpaca format (``--insert_alpaca``)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

from .words import _NEG_LEADS, _nouns, _pick, _surface, _tidy

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
