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
builder adds the condition step (the ``condition`` each tool declares in the registry).

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

from .image_tools import GENERATORS
from .negatives import negative_items, write_negatives
from .replies import extra_tools, generator_tools, make_request, missing_generators, teacher_lines, write_replies
from .words import _nouns  # noqa: F401  (used by the tests)

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
