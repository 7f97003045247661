"""--protocol tools: native function calling against a local OpenAI-compatible server that emits tool_calls.

The server (``testkit.fake_openai.FakeServer`` with ``tool_replies``) answers /v1/chat/completions with
scripted assistant messages -- normal, parallel, malformed-JSON and unknown-tool calls, plain answers -- and records every request, so the
tests check the ``tools`` schema and the ``tool`` messages sent back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from g4t.chat_prompt import PromptFormatError, parse_published_prompt, system_message
from g4t.evaluation.io import load_predictions
from g4t.function_calling import ToolCallingAgent
from g4t.llm.base import GenerationConfig
from g4t.llm.tool_calls import FUNCTION_NAME, ChatReply, ToolCall, ToolCallingBackend, ToolCatalog, function_name
from g4t.prompts import Step, format_steps, render_agent_prompt
from g4t.tools.registry import TOOLS, Toolbox
from testkit.fake_openai import FakeServer, Reply, Request, completion

ASSETS = Path(__file__).resolve().parent / "assets" / "eval"
RECORDS = json.loads((ASSETS / "published_records.json").read_text(encoding="utf-8"))
Script = Callable[[dict], dict]  # request body -> assistant message


def call(function: str, arguments, call_id: str = "call_a", as_object: bool = False) -> dict:
    """A ``tool_calls`` entry; ``as_object`` sends the arguments as a JSON object, as Ollama does."""
    args = arguments if isinstance(arguments, str) or as_object else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": function, "arguments": args}}


USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def tool_replies(script: Script):
    """A ``FakeServer`` responder answering each chat request with the assistant message ``script(body)``."""

    def respond(request: Request) -> Reply:
        message = {"role": "assistant", "content": None, **script(request.body)}
        return Reply(body=completion(request, message=message, usage=USAGE))

    return respond


@pytest.fixture
def serve():
    servers = []

    def start(script: Script) -> FakeServer:
        servers.append(FakeServer(tool_replies(script)).start())
        return servers[-1]

    yield start
    for s in servers:
        s.close()


# -- names and schema ----------------------------------------------------------------------------


def test_every_registered_tool_gets_a_valid_unique_function_name_that_maps_back():
    catalog = ToolCatalog([(t.name, t.description) for t in TOOLS.values()])
    names = [catalog.to_function[t] for t in TOOLS]
    assert all(FUNCTION_NAME.match(n) for n in names) and len(set(names)) == len(TOOLS) == 30
    assert function_name("Edge Detection On Image") == "edge_detection_on_image"
    for tool in TOOLS:
        assert catalog.tool_name(catalog.to_function[tool]) == tool
        assert catalog.tool_name(tool) == tool  # the published name itself
        assert catalog.tool_name(catalog.to_function[tool].upper()) == tool
    assert catalog.tool_name("no_such_tool") is None


def test_colliding_and_odd_names_stay_distinct_and_valid():
    tools = [("Detect the Give Object", "a"), ("detect-the give object!", "b"), ("x" * 80, "c"), ("???", "d")]
    catalog = ToolCatalog(tools, inputs={})
    fns = [catalog.to_function[t] for t, _ in tools]
    assert fns[:2] == ["detect_the_give_object", "detect_the_give_object_2"]
    assert all(FUNCTION_NAME.match(f) for f in fns) and len(set(fns)) == 4
    assert [catalog.tool_name(f) for f in fns] == [t for t, _ in tools]


def test_schema_uses_registry_inputs_and_one_input_for_unknown_tools():
    catalog = ToolCatalog([("Replace Something From The Photo", "desc. "), ("Some Unseen Tool", "unseen")])
    replace, unseen = catalog.schemas()
    fn = replace["function"]
    assert replace["type"] == "function" and fn["name"] == "replace_something_from_the_photo"
    assert fn["description"] == "desc."
    assert list(fn["parameters"]["properties"]) == fn["parameters"]["required"] == ["image", "text", "replacement"]
    assert fn["parameters"]["additionalProperties"] is False
    assert unseen["function"]["parameters"]["required"] == ["input"]


@pytest.mark.parametrize(
    ("function", "arguments", "tool", "action_input", "flag"),
    [
        ("detect_the_give_object", '{"image": "image/a.png", "text": "red car, blue bike"}', "Detect the Give Object",
         "image/a.png, red car, blue bike", None),
        ("crop_image", '{"image": "a.png", "box": [169, 101, 502, 381]}', "Crop Image", "a.png, [169, 101, 502, 381]",
         None),
        ("detect_the_give_object", '{"image_path": "a.png", "object": "dog"}', "Detect the Give Object", "a.png, dog",
         None),  # other parameter names, same count: by position
        ("detect_the_give_object", '{"object": "dog", "image": "a.png"}', "Detect the Give Object", "a.png, dog",
         None),  # a declared name keeps its slot, the other fills the free one
        ("edge_detection_on_image", '"image/a.png"', "Edge Detection On Image", "image/a.png", None),
        ("some_unseen_tool", '{"path": "a.png", "what": "x"}', "Some Unseen Tool", "a.png, x", None),
        ("detect_the_give_object", '{"image": "a.png", "text": ', "Detect the Give Object",
         '{"image": "a.png", "text":', "malformed"),
        ("detect_the_give_object", '{"image": "a.png"}', "Detect the Give Object", "a.png", "malformed"),
        ("detect_the_give_object", "[1, 2]", "Detect the Give Object", "[1, 2]", "malformed"),
        ("fly_to_the_moon", '{"x": 1}', "fly_to_the_moon", "1", "unknown"),
    ],
)  # fmt: skip
def test_resolve_maps_arguments_to_the_published_action_input(function, arguments, tool, action_input, flag):
    catalog = ToolCatalog([("Detect the Give Object", ""), ("Crop Image", ""), ("Edge Detection On Image", ""),
                           ("Some Unseen Tool", "")])  # fmt: skip
    resolved = catalog.resolve(ToolCall("c1", function, arguments))
    assert (resolved.tool, resolved.action_input) == (tool, action_input)
    assert resolved.malformed == (flag == "malformed") and resolved.unknown == (flag == "unknown")
    assert (resolved.error is None) == (flag is None)
    json.loads(resolved.arguments)  # always a JSON object text fit to send back
    if flag == "unknown":
        assert resolved.error == "fly_to_the_moon is not a valid tool, try another one."


def test_oversized_arguments_are_refused_unparsed():
    catalog = ToolCatalog([("Detect the Give Object", "")])
    resolved = catalog.resolve(ToolCall("c", "detect_the_give_object", '{"image": "' + "a" * 50_000), max_chars=1000)
    assert resolved.malformed and "50011 characters long (limit 1000)" in resolved.error
    assert len(resolved.action_input) <= 200


# -- the published prompt, parsed --------------------------------------------------------------------


def test_parser_reads_real_records(tmp_path):
    for r in RECORDS:
        p = parse_published_prompt(r["instruction"])
        assert p.user_input == r["user_input"]
        assert all(name in r["instruction"] and desc for name, desc in p.tools)
        assert p.tools[0][0] in r["instruction"].split("\n> ", 2)[1]
        history = r["instruction"].split("Previous conversation:", 1)[1]
        assert bool(p.history) == ("Human:" in history.split("New input:")[0])
        if p.history:
            assert p.history[0] == ("user", p.history[0][1]) and p.history[1] == ("assistant", "Received.")
            assert p.history[0][1].startswith("Provide an image named ") and r["caption"] in p.history[0][1]
    two_steps = next(r for r in RECORDS if r["id"] == 8)  # two earlier steps
    steps = parse_published_prompt(two_steps["instruction"]).steps
    assert [(s.tool, s.tool_input) for s in steps] == [
        ("Predict Normal Map On Image", "cache/aomezyox.png"),
        ("Generate Image Condition On Normal Map", "image/hzizsxvf.png, a dragon"),
    ]
    assert [s.observation for s in steps] == ["image/hzizsxvf.png", "Result saved as image/ouhbiskx.png"]


@pytest.mark.parametrize("layout", ["training", "demo"])
def test_parser_inverts_the_renderer_in_both_layouts(layout):
    tools = [("Edge Detection On Image", "edges. "), ("Answer Question About The Image", "vqa: answers")]
    history = {
        "training": "Human: Provide an image named image/a.png. Description: a cat Understand the image using tools."
        "\nAI: Received.\nHuman: hi\nthere\nAI: hello",
        "demo": "\nHuman: Provide an image named image/a.png. The description is: a cat. Understand the image using "
        "tools.\nAI: Received.\nHuman: hi\nthere\nAI: hello",
    }[layout]
    steps = [
        Step("Edge Detection On Image", "image/a.png", "image/b.png", log="Thought: Do I need to use a tool? Yes\n"
             "Action: Edge Detection On Image\nAction Input: image/a.png"),
        Step("Answer Question About The Image", "image/b.png, what is it?", "a cat\non two lines",
             log=" Do I need to use a tool? Yes\nAction: Answer Question About The Image\nAction Input: image/b.png, "
             "what is it?"),
    ]  # fmt: skip
    prompt = render_agent_prompt(tools, history, "do it\nplease", format_steps(steps, layout), layout)
    for text in (prompt, prompt + "\nThought: Do I need to use a tool? "):
        p = parse_published_prompt(text)
        assert p.tools == [(n, d.strip()) for n, d in tools]
        assert p.history[2:] == [("user", "hi\nthere"), ("assistant", "hello")]
        assert p.user_input == "do it\nplease"
        assert [(s.tool, s.tool_input, s.observation) for s in p.steps] == [
            (s.tool, s.tool_input, s.observation) for s in steps
        ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello", 'no line ending in "Let\'s think step by step."'),
        ("> T: d\nLet's think step by step.\n", "no 'New input:' line"),
        ("New input: x\nLet's think step by step.\n", "no tool line"),
    ],
)
def test_parser_errors_say_what_is_missing(text, message):
    with pytest.raises(PromptFormatError, match=message):
        parse_published_prompt(text)


def test_system_message_is_made_of_published_sentences_only():
    text = system_message()
    assert text.startswith("GPT4Tools can handle various text and visual tasks")
    assert "Follow file name rules" in text and text.endswith("Let's think step by step.")
    assert "{" not in text and "Action Input" not in text and "TOOLS:" not in text


# -- batch scoring: inference_chatgpt.py --protocol tools -----------------------------------------------


def _gt_reply(body: dict) -> dict:
    """Answer each record as its ground truth would, except for a few scripted misbehaviours."""
    user = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    record = next(r for r in RECORDS if r["user_input"] == user)
    tools = {t["function"]["name"]: t["function"] for t in body["tools"]}
    output = record["output"].split("\nObservation:")[0]
    if "Action:" not in output:
        return {"content": output.split("AI: ", 1)[1].strip()}
    tool = output.split("Action: ", 1)[1].split("\n")[0]
    action_input = output.split("Action Input: ", 1)[1].split("\n")[0]
    fn = function_name(tool)
    assert fn in tools, (fn, list(tools))
    params = tools[fn]["parameters"]["required"]
    values = [action_input] if len(params) == 1 else [v.strip() for v in action_input.split(", ", len(params) - 1)]
    args = dict(zip(params, values, strict=True))
    if record["id"] == 1:  # parallel calls: the first one is the Action
        return {"tool_calls": [call(fn, args, "c1"), call("pose_detection_on_image", {"image": "x.png"}, "c2")]}
    if record["id"] == 2:  # malformed arguments
        return {"tool_calls": [call(fn, '{"image": "image/ujfalzml.png", "text": surfboard')]}
    if record["id"] == 9:  # a function the prompt does not offer
        return {"tool_calls": [call("ocr_the_image", args)]}
    if record["id"] == 10:  # the box as a JSON list
        args["box"] = json.loads(args["box"])
    return {"tool_calls": [call(fn, args)]}


def _inference_chatgpt(ann: Path, save_path: Path, name: str, server: FakeServer) -> int:
    """``inference_chatgpt.py --protocol tools ...`` in-process: its flags, its config, its main."""
    from g4t.cli import parse_args
    from g4t.inference import main
    from g4t.inference_api import ApiInferenceConfig

    args = ["--ann_path", str(ann), "--save_name", name, "--save_path", str(save_path), "--protocol", "tools",
            "--openai_base_url", server.base_url, "--openai_model", "m", "--max_retries", "0"]  # fmt: skip
    (cfg,) = parse_args(ApiInferenceConfig, args=args)
    return main(cfg)


def test_inference_chatgpt_protocol_tools_scores_published_records(serve, tmp_path):
    server = serve(_gt_reply)
    ann = tmp_path / "val.json"
    ann.write_text(json.dumps(RECORDS))
    assert _inference_chatgpt(ann, tmp_path, "tc", server) == 0
    preds = {p["id"]: p["output"] for p in load_predictions(tmp_path / "tc" / "tc_0.json")}
    assert sorted(preds) == [r["id"] for r in RECORDS]
    for r in RECORDS:
        completion = preds[r["id"]][len(r["instruction"]) :]
        expected = r["output"].split("\nObservation:")[0].rstrip("\n")
        if r["id"] == 2:
            expected = expected.replace(
                "image/ujfalzml.png, surfboard, lamp", '{"image": "image/ujfalzml.png", "text": surfboard'
            )
        if r["id"] == 9:  # the wrong function, the right arguments
            expected = expected.replace("Action: Text Detection On Image", "Action: ocr_the_image")
        assert completion == expected, r["id"]
    report = json.loads((tmp_path / "tc" / "tc_report.json").read_text())
    assert report["counts"]["scored"] == len(RECORDS)
    # all but the malformed-arguments and unknown-tool records succeed (the 2-step chain record is
    # half right by construction of the published metric)
    assert report["published"]["SR_act"] == pytest.approx((len(RECORDS) - 1 - 0.5) / len(RECORDS))

    # the requests: system message, history, request, earlier steps as tool_calls + tool messages
    by_user = {next(m["content"] for m in b["messages"] if m["role"] == "user" and "Provide an image" not in
                    m["content"]): b for b in server.requests}  # fmt: skip
    chain = next(r for r in RECORDS if r["id"] == 8)  # two earlier steps
    body = by_user[chain["user_input"]]
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "tool", "assistant", "tool"]
    assert body["messages"][0]["content"] == system_message()
    first_call = body["messages"][4]["tool_calls"][0]
    assert first_call["function"] == {
        "name": "predict_normal_map_on_image",
        "arguments": '{"image": "cache/aomezyox.png"}',
    }
    assert body["messages"][5] == {"role": "tool", "tool_call_id": first_call["id"], "content": "image/hzizsxvf.png"}
    second = body["messages"][6]["tool_calls"][0]["function"]
    assert json.loads(second["arguments"]) == {"image": "image/hzizsxvf.png", "text": "a dragon"}
    offered = [t["function"]["name"] for t in body["tools"]]
    assert offered == [function_name(n) for n, _ in parse_published_prompt(chain["instruction"]).tools]
    assert all("stop" not in b and b["model"] == "m" and b["temperature"] == 0.0 for b in server.requests)


def test_tool_call_counters_and_generate(serve):
    backend = ToolCallingBackend("m", serve(_gt_reply).base_url, max_retries=0)
    out = backend.generate([r["instruction"] for r in RECORDS], stop=["\nObservation:"])
    assert out[0].startswith("Thought: Do I need to use a tool? No\nAI: ")
    u = backend.usage
    assert (u.plain_replies, u.tool_replies) == (3, 8)
    assert (u.calls, u.parallel_replies, u.extra_calls, u.unknown_tools, u.malformed_arguments) == (9, 1, 1, 1, 1)
    assert "1 parallel, 1 unknown tools, 1 malformed arguments" in u.summary()


def test_a_prompt_not_in_the_published_format_fails_before_any_request(serve, tmp_path, capsys):
    server = serve(_gt_reply)
    ann = tmp_path / "bad.json"
    ann.write_text(json.dumps([RECORDS[0], {"id": "x", "instruction": "Just a question?", "output": "AI: y"}]))
    assert _inference_chatgpt(ann, tmp_path, "bad", server) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "prompt 2 of 2 (ending 'Just a question?') is not a published GPT4Tools prompt" in err
    assert "Traceback" not in err and server.requests == []


def test_protocol_tools_needs_a_chat_server(capsys):
    from g4t.cli import parse_args
    from g4t.inference import InferenceConfig
    from g4t.settings import OpenAIConnection

    with pytest.raises(ValueError, match="--protocol tools needs --openai_mode chat"):
        OpenAIConnection(openai_model="m", openai_mode="completions", protocol="tools")
    with pytest.raises(SystemExit):
        parse_args(
            InferenceConfig, args=["--ann_path", "a", "--save_name", "b", "--base_model", "x", "--protocol", "tools"]
        )
    assert "--protocol tools needs an OpenAI-compatible chat server (--backend openai)" in capsys.readouterr().err
    assert isinstance(OpenAIConnection(openai_model="m", protocol="tools").backend(), ToolCallingBackend)


# -- the conversation: tool_calls executed, results as tool messages -----------------------------------


@pytest.fixture
def agent_for(serve, tmp_path):
    def make(script: Script, max_steps: int = 5, **limits) -> tuple[ToolCallingAgent, FakeServer, object]:
        server = serve(script)
        backend = ToolCallingBackend("m", server.base_url, max_retries=0)
        agent = ToolCallingAgent(
            backend, Toolbox("Image2Canny_cpu,CropImage_cpu"), max_steps=max_steps, gen=GenerationConfig(), **limits
        )
        conv = agent.conversation(tmp_path / "session")
        return agent, server, conv

    return make


def _image(conv) -> str:
    return conv.workspace.save_upload(Image.new("RGB", (64, 64), "white"))


def _tool_messages(body: dict) -> list[dict]:
    return [m for m in body["messages"] if m["role"] == "tool"]


def test_conversation_runs_calls_and_answers_each_with_its_id(agent_for):
    def script(body):
        done = _tool_messages(body)
        if not done:
            path = body["messages"][-1]["content"].split()[-1]
            return {"tool_calls": [call("edge_detection_on_image", {"image": path}, "e1"),
                                   call("crop_image", {"image": path, "box": [0, 0, 32, 32]}, "c1", as_object=True)]}  # fmt: skip
        return {"content": f"Edges: {done[0]['content']}, crop: {done[1]['content']}"}

    agent, server, conv = agent_for(script)
    path = _image(conv)
    result = conv.run(f"edges and a crop of {path}")
    assert [s.tool for s in result.steps] == ["Edge Detection On Image", "Crop Image"]
    assert result.steps[1].tool_input == f"{path}, [0, 0, 32, 32]"
    assert len(result.images) == 2 and all(p.is_file() and conv.workspace.root in p.parents for p in result.images)
    names = [conv.workspace.relative(p) for p in result.images]
    assert result.answer == f"Edges: {names[0]}, crop: {names[1]}" and not result.stopped
    first, second = server.requests
    assert [t["function"]["name"] for t in first["tools"]] == ["edge_detection_on_image", "crop_image"]
    assert first["messages"][0] == {"role": "system", "content": system_message()}
    echoed = second["messages"][-3]
    assert echoed["role"] == "assistant" and [c["id"] for c in echoed["tool_calls"]] == ["e1", "c1"]
    assert _tool_messages(second) == [
        {"role": "tool", "tool_call_id": "e1", "content": names[0]},
        {"role": "tool", "tool_call_id": "c1", "content": names[1]},
    ]
    assert agent.backend.usage.parallel_replies == 1 and agent.backend.usage.plain_replies == 1


def test_malformed_arguments_and_unknown_tools_become_readable_results(agent_for):
    def script(body):
        if not _tool_messages(body):
            return {"tool_calls": [call("edge_detection_on_image", '{"image": "image/x.png"', "bad"),
                                   call("teleport", {"x": 1}, "unk")]}  # fmt: skip
        return {"content": "sorry"}

    agent, server, conv = agent_for(script)
    result = conv.run("edges please")
    assert result.answer == "sorry"
    results = _tool_messages(server.requests[1])
    assert results[0]["tool_call_id"] == "bad" and results[0]["content"].startswith(
        "Error: the arguments of Edge Detection On Image are not valid JSON"
    )
    assert results[1] == {
        "role": "tool",
        "tool_call_id": "unk",
        "content": "teleport is not a valid tool, try another one.",
    }
    echoed = server.requests[1]["messages"][-3]["tool_calls"]
    assert echoed[0]["function"]["arguments"] == "{}"  # never re-send arguments a server cannot parse
    u = agent.backend.usage
    assert (u.malformed_arguments, u.unknown_tools, u.extra_calls) == (1, 1, 0)


def test_step_limit_answers_every_call_and_stops(agent_for):
    def script(body):
        n = len(_tool_messages(body))
        return {
            "tool_calls": [call("edge_detection_on_image", {"image": "image/none.png"}, f"k{n}_{i}") for i in range(3)]
        }

    agent, server, conv = agent_for(script, max_steps=2)
    result = conv.run("loop forever")
    assert result.stopped and len(result.steps) == 2 and len(server.requests) == 1
    assert result.answer.startswith("Agent stopped due to max iterations. Last observation: Error:")
    assert "/" + str(conv.workspace.root).strip("/") not in result.answer


def test_paths_outside_the_workspace_are_refused_without_naming_server_paths(agent_for):
    def script(body):
        if not _tool_messages(body):
            return {"tool_calls": [call("edge_detection_on_image", {"image": "/etc/passwd"}, "p")]}
        return {"content": _tool_messages(body)[0]["content"]}

    agent, server, conv = agent_for(script)
    result = conv.run("edges of /etc/passwd")
    assert result.answer.startswith("Error:") and str(conv.workspace.root) not in result.answer
    assert not result.images


def test_memory_keeps_the_last_exchanges_and_the_image_upload(agent_for):
    agent, server, conv = agent_for(lambda body: {"content": f"answer {len(body['messages'])}"})
    conv.memory.keep_last_n = 2
    path, _ = conv.add_image(Image.new("RGB", (64, 64)))
    conv.run("first")
    conv.run("second")
    conv.run("third")
    first, _, third = (b["messages"] for b in server.requests)
    assert (
        first[1]["content"]
        == f"Provide an image named {path}. Description: an uploaded image Understand the image using tools."
    )
    assert first[2] == {"role": "assistant", "content": "Received."}
    assert [m["role"] for m in third] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in third[1:]] == ["first", "answer 4", "second", "answer 6", "third"]


def test_server_failure_is_an_answer_not_an_exception(agent_for):
    agent, server, conv = agent_for(lambda body: {"content": "x"})
    server.close()
    result = conv.run("hello")
    assert result.answer.startswith("The language model failed to answer:") and not result.steps
    assert conv.memory.exchanges[-1].human == "hello"


def test_history_is_dropped_before_the_request_outgrows_the_cap(agent_for):
    agent, server, conv = agent_for(lambda body: {"content": "ok"}, max_prompt_chars=4000)
    conv.memory.keep_last_n = 3
    for i in range(3):
        conv.memory.add(f"question {i} " + "x" * 900, "fine")
    conv.run("now")
    sent = server.requests[0]
    assert len(json.dumps(sent["messages"])) + len(json.dumps(sent["tools"])) <= 4000
    assert sent["messages"][-1]["content"] == "now" and "question 2" in sent["messages"][1]["content"]


def test_demo_builds_the_tool_calling_agent_and_the_chatbot_runs_it(serve, tmp_path):
    from g4t.app import ChatBot
    from g4t.demo_config import build_agent, parse_demo_args

    def script(body):
        done = _tool_messages(body)
        if not done:
            return {
                "tool_calls": [call("edge_detection_on_image", {"image": body["messages"][-1]["content"].split()[0]})]
            }
        return {"content": f"Here are the edges: {done[0]['content']}"}

    server = serve(script)
    cfg = parse_demo_args(["--protocol", "tools", "--openai_base_url", server.base_url, "--openai_model", "m",
                           "--load", "Image2Canny_cpu", "--image_dir", str(tmp_path)])  # fmt: skip
    agent = build_agent(cfg)
    assert isinstance(agent, ToolCallingAgent) and agent.max_steps == cfg.max_steps
    bot = ChatBot(agent, tmp_path)
    session, messages = bot.submit(None, "detect the edges", Image.new("RGB", (64, 64), "red"))
    assert messages[-2]["content"].startswith("Here are the edges: image/")
    assert messages[-1]["content"]["path"].endswith(".png")  # the edge map shown inline
    assert "Used tool 1: Edge Detection On Image" in [m.get("metadata", {}).get("title") for m in messages]
    with pytest.raises(SystemExit):
        parse_demo_args(["--protocol", "tools"])  # no server given


def test_chat_reply_decodes_ollama_style_object_arguments():
    from g4t.llm.tool_calls import _message_json

    message = {"content": None, "tool_calls": [{"function": {"name": "f", "arguments": {"image": "a.png"}}}]}
    reply = ChatReply.from_json(_message_json(message))
    assert reply.tool_calls == [ToolCall("call_0", "f", '{"image": "a.png"}')]
    assert _message_json({"content": None}) is None


def test_the_react_loop_can_drive_the_tools_backend_through_the_backend_contract(serve, tmp_path):
    """``Agent`` + ``ToolCallingBackend.generate``: each ReAct prompt becomes a tools request, each reply a
    ReAct step; earlier steps go back as tool_calls + tool messages (the fallback of any ReAct-only path)."""
    from g4t.agent import Agent

    def script(body):
        done = _tool_messages(body)
        if not done:
            return {
                "tool_calls": [call("edge_detection_on_image", {"image": body["messages"][-1]["content"].split()[-1]})]
            }
        return {"content": f"edges: {done[0]['content']}"}

    server = serve(script)
    agent = Agent(ToolCallingBackend("m", server.base_url, max_retries=0), Toolbox("Image2Canny_cpu"))
    conv = agent.conversation(tmp_path / "s")
    path = _image(conv)
    result = conv.run(f"edges of {path}")
    assert [s.tool for s in result.steps] == ["Edge Detection On Image"] and len(result.images) == 1
    assert result.answer == f"edges: {conv.workspace.relative(result.images[0])}"
    second = server.requests[1]["messages"]
    assert second[-2]["tool_calls"][0]["function"] == {
        "name": "edge_detection_on_image",
        "arguments": json.dumps({"image": path}),
    }
    assert second[-1]["role"] == "tool" and second[-1]["content"] == result.steps[0].observation
