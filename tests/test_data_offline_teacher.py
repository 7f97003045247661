"""The offline teacher: every registered tool covered, replies parse and build, seeded, varied."""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from pathlib import Path

import pytest

from g4t.data.catalog import registered_tools, tool_catalog
from g4t.data.offline_teacher import (
    GENERATORS,
    _nouns,
    extra_tools,
    generator_tools,
    make_request,
    missing_generators,
    negative_items,
    teacher_lines,
    write_negatives,
    write_replies,
)
from g4t.data.parse import ParseReport, parse_teacher_reply

CAPTIONS_PATH = Path(__file__).resolve().parents[1] / "data" / "magicbrush_dev_captions.json"
CAPTIONS = json.loads(CAPTIONS_PATH.read_text())[:200]

# Words of tool names that say nothing about the task.
VQA = "Answer Question About The Image"
_GENERIC = set("the of on in from to image photo something given give user input text using generate condition".split())


def _parse(reply: str, tools: list[str], report: ParseReport | None = None):
    catalog = tool_catalog(tools)
    return parse_teacher_reply(
        reply,
        {n: t.n_args for n, t in catalog.items()},
        {n: t.needs_image for n, t in catalog.items()},
        ("example.jpg",),
        report if report is not None else ParseReport(),
    )


def test_every_registered_tool_has_a_generator():
    assert missing_generators() == []
    assert set(generator_tools()) == set(registered_tools())
    assert not set(GENERATORS) - set(registered_tools()), "generator for a tool that is not registered"
    assert {"Edit Image Using Text", "Edit the Given Object", "Segmentation On Image"} <= set(extra_tools())


def test_offline_teacher_lines_parse_with_the_project_parser():
    tools = generator_tools()
    report = ParseReport()
    rng = random.Random(0)
    for item in CAPTIONS[:60]:
        reply = teacher_lines(item["caption"], tools, rng, noise=0.2)
        parsed = _parse(reply, tools, report)
        assert [p.tool for p in parsed] == tools, reply
        for p, line in zip(parsed, reply.splitlines(), strict=True):
            assert p.args[0] == "example.jpg" or p.tool == "Generate Image From User Input Text"
            assert line.endswith(f"[{p.tool}, {', '.join(p.args)}]")
    assert report.parsed == report.lines == 60 * len(tools) and not report.skipped


def test_replies_build_without_skips(tmp_path):
    from g4t.data.annotate import AnnotateConfig, run

    replies, neg = tmp_path / "replies.jsonl", tmp_path / "neg.json"
    n = write_replies(CAPTIONS[:40], replies, tools=generator_tools(), noise=0.1, seed=3)
    assert n == 40 * len(generator_tools())
    assert write_negatives(CAPTIONS[:40], neg, seed=3) == 400
    report = run(
        AnnotateConfig(
            input_path=str(replies),
            output_path=str(tmp_path / "train.json"),
            complement=True,
            insert_alpaca=True,
            alpaca_path=str(neg),
            tools=extra_tools(),
            seed=0,
        )
    )
    assert report["parse"]["parsed"] == n and not report["parse"]["skipped"]
    assert report["tools_not_registered"] == []
    records = json.loads((tmp_path / "train.json").read_text())
    finals = [r for r in records if "Do I need to use a tool? No" in r["output"]]
    assert len(records) > n and len(finals) >= 400


def test_default_tools_are_the_published_ones(tmp_path):
    from g4t.data.teacher import published_tool_names

    write_replies(CAPTIONS[:2], tmp_path / "r.jsonl", seed=0)
    rec = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [p.tool for p in _parse(rec[0]["instructions"], published_tool_names())] == published_tool_names()


def test_same_seed_same_bytes(tmp_path):
    kw = {"tools": generator_tools(), "tools_per_caption": 6, "noise": 0.2}
    write_replies(CAPTIONS[:30], tmp_path / "a.jsonl", seed=5, **kw)
    write_replies(CAPTIONS[:30], tmp_path / "b.jsonl", seed=5, **kw)
    write_replies(CAPTIONS[:30], tmp_path / "c.jsonl", seed=6, **kw)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "c.jsonl").read_bytes()
    write_negatives(CAPTIONS[:30], tmp_path / "n1.json", seed=5)
    write_negatives(CAPTIONS[:30], tmp_path / "n2.json", seed=5)
    assert (tmp_path / "n1.json").read_bytes() == (tmp_path / "n2.json").read_bytes()


def _requests(n_captions: int = 200, seed: int = 0) -> dict[str, list[tuple[str, list[str]]]]:
    rng = random.Random(seed)
    out = defaultdict(list)
    for item in CAPTIONS[:n_captions]:
        for tool in generator_tools():
            out[tool].append(make_request(tool, item["caption"], rng))
    return out


@pytest.fixture(scope="module")
def requests_by_tool():
    return _requests()


def test_requests_are_varied(requests_by_tool):
    for tool, pairs in requests_by_tool.items():
        texts = [r for r, _ in pairs]
        assert len(set(texts)) >= 0.9 * len(texts), tool
        # surface forms: the request with its copied arguments masked
        forms = set()
        for (r, args), item in zip(pairs, CAPTIONS, strict=True):
            # VQA requests are mostly their question: mask only the caption's nouns there
            masks = _nouns(item["caption"]) if tool == VQA else (args[1:] if args[0] == "example.jpg" else args)
            for a in sorted(masks, key=len, reverse=True):
                r = r.replace(a, "<ARG>")
            forms.add(r.lower())
        assert len(forms) >= 150, (tool, len(forms))


def test_requests_rarely_repeat_the_tool_name(requests_by_tool):
    shares = []
    for tool, pairs in requests_by_tool.items():
        words = [w for w in re.findall(r"[a-z]+", tool.lower()) if w not in _GENERIC]
        if not words:
            continue
        hits = sum(all(re.search(rf"\b{w}", r.lower()) for w in words) for r, _ in pairs)
        shares.append(hits / len(pairs))
        assert hits / len(pairs) < 0.6, (tool, words, hits / len(pairs))
    assert sum(shares) / len(shares) < 0.15


def test_typos_and_casing_never_touch_arguments():
    rng = random.Random(1)
    typo_seen = 0
    for item in CAPTIONS[:100]:
        for tool in generator_tools():
            request, args = make_request(tool, item["caption"], rng, typo_rate=1.0)
            text_args = args[1:] if args and args[0] == "example.jpg" else args
            for a in text_args:
                assert a in request, (tool, a, request)
            typo_seen += 1
    assert typo_seen


def test_typos_are_a_minority():
    clean = {
        t: make_request(t, "A dog on a red sofa.", random.Random(i), typo_rate=0.0)[0] for i, t in enumerate(GENERATORS)
    }
    noisy = {
        t: make_request(t, "A dog on a red sofa.", random.Random(i), typo_rate=0.08)[0]
        for i, t in enumerate(GENERATORS)
    }
    assert sum(clean[t].lower() != noisy[t].lower() for t in GENERATORS) <= len(GENERATORS) // 3


def test_condition_tools_get_one_and_two_step_requests(requests_by_tool):
    from g4t.data.catalog import condition_pairs

    for tool in condition_pairs():
        texts = [r.lower() for r, _ in requests_by_tool[tool]]
        two_step = sum(bool(re.search(r"\b(then|after that|step 2|once you have|first)\b", t)) for t in texts)
        assert 0.15 * len(texts) < two_step < 0.7 * len(texts), (tool, two_step)


def test_noise_mislabels_a_share_of_lines():
    tools = generator_tools()
    clean = teacher_lines("A dog on a red sofa.", tools, random.Random(2), noise=0.0)
    noisy = teacher_lines("A dog on a red sofa.", tools, random.Random(2), noise=1.0)
    assert [p.tool for p in _parse(noisy, tools)] == [p.tool for p in _parse(clean, tools)]
    assert clean != noisy


def test_negatives_are_alpaca_items_and_varied():
    items = negative_items(CAPTIONS, 500, seed=0)
    assert all(set(it) == {"instruction", "input", "output"} and it["instruction"] and it["output"] for it in items)
    assert len({it["instruction"].lower() for it in items}) > 250
    assert all(len(it["output"]) < 200 for it in items)
