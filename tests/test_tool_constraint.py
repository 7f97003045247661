"""``--constrain_tools`` (``g4t.llm.tool_constraint``): every ``Action:`` line names a tool of the prompt's list."""

from __future__ import annotations

import pytest

from g4t.llm.base import GenerationConfig
from g4t.llm.tool_constraint import TokenTable, ToolNameConstraint, ToolNameProcessor, tool_names

NAMES = ["Edge Detection On Image", "Answer Question About The Image", "Detection"]
LISTED = f"Action: the action to take, should be one of [{', '.join(NAMES)}]\n"
# The model "wants" a tool it was trained on that this prompt does not list.
SCRIPT = (
    "Thought: Do I need to use a tool? Yes\nAction: Segmentation On Image\nAction Input: image/ab.png\nObservation:"
)


def test_names_come_from_the_last_list_of_the_raw_prompt():
    wrapped = f"<|im_start|>user\nold: should be one of [Old Tool]\n{LISTED}New input: hi<|im_end|>\n"
    assert tool_names(wrapped) == NAMES
    assert tool_names("TOOLS:\nAction: the action to take, should be one of [Crop Image]\n") == ["Crop Image"]
    assert tool_names("no list here") is None
    assert tool_names("should be one of []") is None
    assert tool_names("should be one of [A, B\n]") is None  # a list never spans lines


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    from g4t.llm.hf import load_model

    return load_model(tiny_llama)


@pytest.fixture(scope="module")
def table(tiny):
    return TokenTable.of(tiny[1])


def _text(table: TokenTable, ids) -> str:
    return "".join(table.texts[i] or "" for i in ids)


def _action_lines(text: str) -> list[str]:
    return [line[len("Action:") :] for line in text.split("\n") if line.startswith("Action:")]


def test_table_is_built_once_per_tokenizer_and_keeps_word_spaces(tiny, table):
    tok = tiny[1]
    assert TokenTable.of(tok) is table
    ids = tok.encode("Action: Edge Detection On Image\n", add_special_tokens=False)
    assert _text(table, ids) == "Action: Edge Detection On Image\n"
    assert table.texts[tok.eos_token_id] is None and table.texts[tok.pad_token_id] is None


def test_decisions_per_line(tiny, table):
    tok = tiny[1]
    c = ToolNameConstraint(table, NAMES, head="...\nThought: Do I need to use a tool? Yes\n")

    def enc(text: str) -> list[int]:
        return tok.encode(text, add_special_tokens=False)

    allowed = [table.texts[i] for i in c.decide(enc("Action: Edge Detection")).allowed]
    assert allowed and all(" On Image\n".startswith(t) for t in allowed)
    assert table.texts[enc(" On Image\n")[0]] in allowed
    assert tok.eos_token_id not in c.decide(enc("Action: Edge Detection")).allowed  # EOS never ends a name
    assert enc("\n")[0] in c.decide(enc("Action: Detection")).allowed
    # "Action" may still become "Action Input:" or "Action:": " Input" is free, ":" is allowed
    decision = c.decide(enc("Action"))
    assert decision.allowed is None
    assert enc(" Input")[0] not in decision.banned and enc(":")[0] not in decision.banned
    # "Action Input:", "Thought:" and text after a finished Action line are free
    for text in ("Action Input: image/a", "Action Input:", "Thought: Do I", "Action: Detection\nAction Input: x"):
        assert c.decide(enc(text)).free, text
    # generation may start mid-line: the prompt's last line counts
    mid = ToolNameConstraint(table, NAMES, head="Human: hi\nAction: Edge Det")
    assert all("ection On Image\n".startswith(table.texts[i]) for i in mid.decide([]).allowed)
    # a line that is off every listed name already (in the prompt) cannot be fixed: it is left free
    assert ToolNameConstraint(table, NAMES[:1], head="Action: Answer").decide([]).free


def test_text_checks_handle_tokens_that_run_past_the_newline(table):
    c = ToolNameConstraint(table, NAMES)
    assert c.lines_ok("Action: Detection\nAction Input: x") and c.lines_ok("Action: Edge Det")
    assert c.lines_ok("Action: Detection\nAction: Edge")  # a second Action line, on its way
    assert not c.lines_ok("Action: Detection\nAction: Segment")
    assert not c.lines_ok("Action: Detections") and not c.lines_ok("Action:Detection") and not c.lines_ok("Action: Seg")
    assert c.lines_ok("Thought: Action: Segmentation\n")  # only lines that begin with "Action:"


def test_tokens_that_join_the_colon_to_a_name_or_run_past_the_newline():
    """A vocabulary where ``: Edge`` is one token and tokens hold a newline and more text (SmolLM2 has neither)."""
    vocab = ["Action", ":", ": Edge", ": Seg", " Edge", " Detection", " On", " Image", "\n", " Input", " Image\nAction"]
    vocab += [" Image\nAction: Seg", "\nAction: Seg", "\nAction: Edge", " Image\n\n", None, ""]
    table = TokenTable(vocab)
    ids = {t: i for i, t in enumerate(vocab)}
    c = ToolNameConstraint(table, NAMES)
    assert table.action_tails == [ids[" Image\nAction: Seg"], ids["\nAction: Seg"], ids["\nAction: Edge"]]
    # after "Action": ": Edge" continues a name, ": Seg" does not; " Input" makes an "Action Input" line
    banned = c.decide([ids["Action"]]).banned
    assert ids[": Seg"] in banned and ids["\nAction: Seg"] in banned
    assert not {ids[": Edge"], ids[":"], ids[" Input"], ids["\nAction: Edge"]} & set(banned)
    # inside the name, a token may finish it and go on, if what follows is valid too
    allowed = {vocab[i] for i in c.decide([ids["Action"], ids[": Edge"], ids[" Detection"], ids[" On"]]).allowed}
    assert allowed == {" Image", " Image\nAction", " Image\n\n"}
    after_name = [ids["Action"], ids[": Edge"], ids[" Detection"], ids[" On"], ids[" Image"], ids["\n"]]
    assert set(c.decide(after_name).banned) == {ids[" Image\nAction: Seg"], ids["\nAction: Seg"]}  # a fresh line
    # no token with no text (special, empty) is allowed inside a name
    assert {vocab[i] for i in c.decide([ids["Action"], ids[":"]]).allowed} == {" Edge", " Detection"}


def _scripted_scores(table, tok, generated: list[int], seed: int):
    """Scores of a 'model' that writes ``SCRIPT`` line by line (random scores elsewhere): on each line it
    prefers the longest token that keeps the line a prefix of the scripted one, and a newline once off it."""
    import torch

    g = torch.Generator().manual_seed(seed + len(generated))
    scores = torch.randn(len(table.texts), generator=g)
    text = _text(table, generated)
    lines = SCRIPT.split("\n")
    k = text.count("\n")
    if k >= len(lines):
        return scores
    want = lines[k] + ("\n" if k + 1 < len(lines) else "")
    line = text[text.rfind("\n") + 1 :]
    if want.startswith(line) and len(want) > len(line):
        rest = want[len(line) :]
        best = max((t for t in table.by_text if rest.startswith(t)), key=len)
        scores[table.by_text[best][0]] += 100
    else:
        scores[tok.encode("\n", add_special_tokens=False)[0]] += 100
    return scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_processor_forces_a_listed_name_in_a_left_padded_batch(tiny, table, seed):
    """Three rows, left-padded to one width: constrained (list), free (no list), constrained mid-line."""
    import torch

    tok = tiny[1]
    heads = ["Thought: hi\n", "", "Thought: Do I need to use a tool? Yes\nAction: Answer"]
    constraints = [ToolNameConstraint(table, NAMES, heads[0]), None, ToolNameConstraint(table, NAMES, heads[2])]
    width = 6
    rows = [[tok.pad_token_id] * (width - 2) + [5, 6] for _ in heads]
    processor = ToolNameProcessor(constraints, width)
    for _ in range(40):
        new = [r[width:] for r in rows]
        scores = torch.stack([_scripted_scores(table, tok, n, seed) for n in new])
        out = processor(torch.tensor(rows), scores)
        for r, s in zip(rows, out, strict=True):
            r.append(int(s.argmax()))
    texts = [_text(table, r[width:]) for r in rows]
    assert texts[1].startswith(SCRIPT[:60])  # free row: the scripted (wrong) tool
    assert _action_lines(texts[1])[0] == " Segmentation On Image"
    assert texts[0].startswith("Thought: Do I need to use a tool? Yes\nAction: ")
    assert [a.strip() in NAMES for a in _action_lines(texts[0])] == [True]
    assert "\nAction Input: image/ab.png\n" in texts[0]  # the next line is the model's own again
    assert texts[2].startswith(" Question About The Image\n")  # the prompt ended in "Action: Answer"


def test_flag_off_or_no_list_changes_nothing(tiny):
    from g4t.llm.hf import HFBackend

    model, tok = tiny
    backend = HFBackend(model, tok, prefix_cache=0)
    on, off = GenerationConfig(max_new_tokens=12, constrain_tools=True), GenerationConfig(max_new_tokens=12)
    prompts = ["Human: detect the edges\nThought: Do I need to use a tool? Yes\nAction:", "Action: Edge"]
    assert backend.generate(prompts, gen=on) == backend.generate(prompts, gen=off)  # batch, no list
    assert backend.generate(prompts[:1], gen=on) == backend.generate(prompts[:1], gen=off)  # single prompt


PROMPT = LISTED + "Human: detect the edges of image/ab.png\nThought: Do I need to use a tool? Yes\nAction:"


def _named(completion: str, names=NAMES) -> bool:
    line = completion.split("\n")[0]
    return completion.startswith(" ") and "\n" in completion and line.strip() in names


def test_tiny_model_names_a_listed_tool_in_batch_and_single_prompt(tiny):
    """The random tiny model writes something else after ``Action:``; with the flag, a listed name follows."""
    from g4t.llm.hf import HFBackend

    model, tok = tiny
    on, off = GenerationConfig(max_new_tokens=16, constrain_tools=True), GenerationConfig(max_new_tokens=16)
    lookup = HFBackend(model, tok)  # one prompt: prompt-lookup decoding
    plain = HFBackend(model, tok, prefix_cache=0, prompt_lookup=0)  # one prompt: model.generate
    (free,) = plain.generate([PROMPT], gen=off)
    assert not _named(free)
    (single,) = lookup.generate([PROMPT], gen=on)
    assert _named(single), single
    assert plain.generate([PROMPT], gen=on) == [single]  # the same choice on both single-prompt paths
    assert "".join(lookup.stream(PROMPT, gen=on)) == single
    # a batch with left padding: two lists of different lengths and a row without a list
    short = LISTED.replace(", ".join(NAMES), NAMES[1]) + "Action:"
    free_row = "Human: hi\nAction:"
    batch = plain.generate([PROMPT, short, free_row], gen=on)
    assert _named(batch[0]) and _named(batch[1], NAMES[1:2])
    assert batch[2] == plain.generate([PROMPT, short, free_row], gen=off)[2]  # the row without a list is free


def test_sampling_and_beams_stay_inside_the_list(tiny):
    from g4t.llm.hf import HFBackend

    model, tok = tiny
    backend = HFBackend(model, tok, prefix_cache=0)
    sample = GenerationConfig(max_new_tokens=40, constrain_tools=True, do_sample=True, temperature=2.0, top_k=0)
    beams = GenerationConfig(max_new_tokens=40, constrain_tools=True, num_beams=3)
    for gen in (sample, beams):
        assert all(_named(c) for c in backend.generate([PROMPT, PROMPT], gen=gen))
        assert _named(backend.generate([PROMPT], gen=gen)[0])


def test_openai_backend_refuses_the_flag_before_any_request():
    from g4t.llm.openai_backend import OpenAIBackend

    backend = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", max_retries=0)
    gen = GenerationConfig(constrain_tools=True)
    with pytest.raises(ValueError, match="--constrain_tools needs a local model"):
        backend.generate([PROMPT], gen=gen)
    with pytest.raises(ValueError, match="--constrain_tools"):
        backend.stream(PROMPT, gen=gen)
    assert backend.usage.requests == 0


@pytest.mark.parametrize("script", ["inference.py", "gpt4tools.py"])
def test_flag_in_the_scripts(script, capsys):
    from g4t.cli import parse_args
    from g4t.demo_config import DemoConfig
    from g4t.inference import InferenceConfig

    cls, required = {
        "inference.py": (InferenceConfig, ["--ann_path", "a.json", "--save_name", "r", "--base_model", "m"]),
        "gpt4tools.py": (DemoConfig, []),
    }[script]
    (cfg,) = parse_args(cls, args=[*required, "--constrain_tools"])
    assert cfg.gen.constrain_tools
    (cfg,) = parse_args(cls, args=required)
    assert cfg.gen.constrain_tools == (script == "gpt4tools.py")  # the demo constrains local models by default
    (cfg,) = parse_args(cls, args=[*required, "--constrain_tools", "False"])
    assert not cfg.gen.constrain_tools
    if script == "inference.py":  # refused when parsed, before a server is contacted
        with pytest.raises(SystemExit):
            parse_args(cls, args=[*required[:4], "--backend", "openai", "--openai_model", "m", "--constrain_tools"])
        assert "--constrain_tools needs a local model" in capsys.readouterr().err


def test_real_tokenizer_keeps_action_colon_and_name_apart():
    """SmolLM2 (the packaged model): ``Action`` ``:`` `` Edge``...; no token joins ``:`` to a name."""
    from transformers import AutoTokenizer

    from g4t.llm.sources import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("smollm2"))
    pieces = [tok.decode([i]) for i in tok.encode("Action: Edge Detection On Image\nAction Input: a\n")]
    assert pieces[:7] == ["Action", ":", " Edge", " Detection", " On", " Image", "\n"]
    assert pieces[7:9] == ["Action", " Input"]
    table = TokenTable.of(tok)
    assert not [t for t in table.starting_with(":") if t[1:2] == " "]  # no ": Edge"-like token in this vocabulary
    assert table.action_tails == []
    c = ToolNameConstraint(table, NAMES)
    after = [table.texts[i] for i in c.decide(tok.encode("Action: Edge")).allowed]
    assert " Detection" in after and all(" Detection On Image\n".startswith(t) for t in after)
    assert tok.eos_token_id not in c.decide(tok.encode("Action: Edge")).allowed
    banned = c.decide(tok.encode("Action")).banned  # ':' keeps every name open, ' Input' starts another kind
    assert tok.encode("::")[0] in banned and tok.encode(":")[0] not in banned and tok.encode(" Input")[0] not in banned


def test_real_model_copies_the_format_line_unless_constrained():
    """SmolLM2 (untuned) copies ``Action: the action to take, ...`` from the format instructions; with the flag
    its Action line names a listed tool, on the batch and the single-prompt path alike."""
    from g4t.llm.hf import HFBackend

    backend = HFBackend.from_pretrained("smollm2", None, batch_size=2, device="cpu", dtype="fp32")
    prompt = (
        "Answer with a tool.\n\nTo use a tool, please use the following format:\n\n```\n"
        "Thought: Do I need to use a tool? Yes\n" + LISTED + "Action Input: the input to the action\n```\n\n"
        "New input: find the edges in image/ab.png\nThought: Do I need to use a tool? Yes\n"
    )
    on, off = GenerationConfig(max_new_tokens=14, constrain_tools=True), GenerationConfig(max_new_tokens=14)
    (free,) = backend.generate([prompt], ["\nObservation:"], off)
    assert free.startswith("Action: the action to take"), free
    (single,) = backend.generate([prompt], ["\nObservation:"], on)
    batch = backend.generate([prompt, prompt + "Action: Edge"], ["\nObservation:"], on)
    assert single.startswith("Action: ") and single.split("\n")[0][len("Action: ") :] in NAMES, single
    assert batch[0].split("\n")[0][len("Action: ") :] in NAMES, batch
    assert batch[1].startswith(" Detection On Image\n"), batch
