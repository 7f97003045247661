"""Teacher prompt bytes and teacher-reply parsing (published style and odd replies)."""

from __future__ import annotations

from pathlib import Path

import pytest

from g4t.data.parse import (
    BAD_IMAGE,
    NO_CALL,
    TOO_FEW_ARGS,
    TOO_MANY_ARGS,
    UNKNOWN_TOOL,
    ParseReport,
    parse_teacher_reply,
)
from g4t.data.teacher import published_tool_names, teacher_prompt

ASSETS = Path(__file__).resolve().parent / "assets"

TOOLS = {
    "Detect the Give Object": 2,
    "Segment the Image": 1,
    "Generate Image From User Input Text": 1,
    "Answer Question About The Image": 2,
    "Replace Something From The Photo": 3,
    "Segment the given object": 2,
    "Crop Image": 2,
    "Edit Image Using Text": 2,
    "Detection": 1,
}
NEEDS_IMAGE = {t: t != "Generate Image From User Input Text" for t in TOOLS}


def test_teacher_prompt_is_the_published_prompt_byte_for_byte():
    published = (ASSETS / "teacher_prompt.published.txt").read_text(encoding="utf-8")
    caption = 'A {curly} "quoted" caption; dog [12, 30, 200, 310].'
    assert teacher_prompt(caption) == published.replace("{caption}", caption)
    assert len(published_tool_names()) == 26


def test_extra_tools_are_numbered_and_counted():
    p = teacher_prompt("x", ["Edit Image Using Text", "Edit the Given Object"])
    assert "Below are 28 visual tools." in p and "generate 28 visual instruction in total" in p
    # the published EFE line for tool 27, and a registry-made line for 28
    assert "\n27. Edit Image Using Text: Useful when you want to edit the objects according to the text." in p
    assert "\n28. Edit the Given Object: Useful when" in p
    assert p.endswith(
        "\n\nNote that your generated visual instructions should be related to the image caption extremely. "
        "Please generate complex and deceptive instructions as much as possible.\nDirectly reply to me with the list."
    )
    with pytest.raises(ValueError, match="unknown tool"):
        teacher_prompt("x", ["Fly To The Moon"])


PUBLISHED_STYLE = """1. Find the brown dog on the left, [Detect the Give Object, example.jpg, brown dog]
2. Segment all objects in the picture, [Segment the Image, example.jpg]
3. "Draw a cat, sitting on a mat, at night", [Generate Image From User Input Text, a cat, sitting on a mat, at night]
10. What's the man's hat color?, [Answer Question About The Image, "example.jpg", What's the man's hat color?]
11. Replace the red car with a bus, [Replace Something From The Photo, example.jpg, red car, big, yellow bus]"""


def test_published_style_reply():
    report = ParseReport()
    items = parse_teacher_reply(PUBLISHED_STYLE, TOOLS, NEEDS_IMAGE, report=report)
    assert [i.tool for i in items] == [
        "Detect the Give Object",
        "Segment the Image",
        "Generate Image From User Input Text",
        "Answer Question About The Image",
        "Replace Something From The Photo",
    ]
    assert items[0].instruction == "Find the brown dog on the left" and items[0].args == ("example.jpg", "brown dog")
    assert items[2].instruction == "Draw a cat, sitting on a mat, at night"
    assert items[2].args == ("a cat, sitting on a mat, at night",)
    # numbering of two digits does not eat the first letter (published inst[3:] did)
    assert items[3].instruction == "What's the man's hat color?"
    assert items[3].args == ("example.jpg", "What's the man's hat color?")
    assert items[4].args == ("example.jpg", "red car, big", "yellow bus")
    assert report.parsed == 5 and not report.skipped


ODD = """Here are the 26 instructions:

Detect the dog, [Detect the Given Object, example.jpg, dog]
- segment the cat please: [segment the given objects, 'example.jpg', cat]
(4) Crop the region [10, 20, 50, 60] of the image, [Crop Image, example.jpg, [10, 20, 50, 60]].
Detect everything, [ Detection , example.jpg ]
Make it a bus, [Replace Something From The Photo, example.jpg, car]
Segment this, [Segment the Image, example.jpg, all objects]
Detect a cat, [Detect the Give Object, image.png, cat]
Fly, [Teleport Tool, example.jpg]
Just some text without a call.
\u201cChange the sky to night\u201d, [Edit Image Using Text, example.jpg, make the sky a starry night]"""


def test_odd_replies_are_parsed_or_counted_by_reason():
    report = ParseReport()
    items = parse_teacher_reply(ODD, TOOLS, NEEDS_IMAGE, report=report)
    got = {i.tool: i for i in items}
    assert got["Detect the Give Object"].instruction == "Detect the dog"
    assert got["Segment the given object"].args == ("example.jpg", "cat")
    assert got["Segment the given object"].instruction == "segment the cat please"
    assert got["Crop Image"].args == ("example.jpg", "[10, 20, 50, 60]")
    assert got["Crop Image"].instruction == "Crop the region [10, 20, 50, 60] of the image"
    assert got["Detection"].args == ("example.jpg",)
    assert got["Edit Image Using Text"].instruction == "Change the sky to night"
    assert report.parsed == 5
    assert report.skipped == {NO_CALL: 2, TOO_FEW_ARGS: 1, TOO_MANY_ARGS: 1, BAD_IMAGE: 1, UNKNOWN_TOOL: 1}
    assert report.lines == 11 and sum(report.skipped.values()) + report.parsed == report.lines


def test_efe_template_lines_keep_the_whole_instruction():
    # The EFE template line (no numbering): the published parser cut 3 characters and rejected the file name.
    line = 'Make the doll wear a hat. [Edit Image Using Text, "31749-input.png" , Make the doll wear a hat.] .'
    items = parse_teacher_reply(line, TOOLS, NEEDS_IMAGE, image_names=("example.jpg", "31749-input.png"))
    assert len(items) == 1
    assert items[0].instruction == "Make the doll wear a hat."
    assert items[0].args == ("example.jpg", "Make the doll wear a hat.")
