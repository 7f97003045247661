"""The demo's bot handlers driven with a scripted LLM and the real edge tool; the demo config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from g4t.agent import Agent
from g4t.app import ChatBot, Session
from g4t.demo_config import (
    DemoConfig,
    build_agent,
    parse_demo_args,
    resolve_auto,
    resolve_layout,
    resolve_template,
)
from g4t.llm import ScriptedBackend
from g4t.prompts import DEMO, TRAINING
from g4t.tools import Toolbox
from testkit.replies import EDGE, edge_replies


@pytest.fixture
def bot(tmp_path):
    agent = Agent(ScriptedBackend(edge_replies), Toolbox("Image2Canny_cpu"), max_steps=4)
    return ChatBot(agent, tmp_path / "sessions", keep_last_n=3)


def _images(messages):
    return [m["content"]["path"] for m in messages if isinstance(m["content"], dict)]


def test_upload_then_ask_for_edges_shows_the_edge_image(bot, square_image):
    session, messages = bot.run_image(None, square_image)
    assert isinstance(session, Session)
    upload = _images(messages)[0]
    assert upload.startswith(str(bot.image_root / session.id / "image"))
    assert messages[-1] == {"role": "assistant", "content": "Received."}

    session, messages = bot.run_text(session, "detect the edges of this image")
    thoughts = [m for m in messages if m.get("metadata")]
    assert any(EDGE in m["metadata"]["title"] for m in thoughts)  # the step, collapsed
    assert all(m["metadata"]["status"] == "done" for m in thoughts)
    step = next(m for m in thoughts if EDGE in m["metadata"]["title"])
    assert "Action Input: image/" in step["content"] and "Observation: image/" in step["content"]
    answer = next(m for m in reversed(messages) if isinstance(m["content"], str) and not m.get("metadata"))
    assert answer["content"].startswith("Here are the edges: image/")
    edge_path = _images(messages)[-1]
    assert edge_path != upload and edge_path.startswith(str(bot.image_root / session.id / "image"))
    with Image.open(edge_path) as edges:
        values = set(edges.convert("L").getdata())
    assert values <= {0, 255} and values == {0, 255}  # a real Canny map: black with white edges


def test_submit_sends_image_and_text_together(bot, square_image):
    session, messages = bot.submit(None, "detect the edges of this image", square_image)
    roles = [m["role"] for m in messages]
    assert roles[0] == "user" and messages[1]["metadata"]["title"].startswith("Received image/")
    assert len(_images(messages)) == 2  # the upload and the edge map
    # the message reached the model prefixed with the image name, as in the published demo
    prompt = bot.agent.backend.prompts[0]
    upload_name = messages[0]["content"]["alt_text"]
    assert f"{upload_name} detect the edges of this image" in prompt
    # Enter with an empty box and no image does nothing
    assert bot.submit(session, "   ", None)[1] == messages


def test_image_from_path_and_bad_upload(bot, square_image, tmp_path):
    square_image.save(tmp_path / "in.jpg")
    session, messages = bot.run_image(None, str(tmp_path / "in.jpg"))
    assert len(_images(messages)) == 1
    (tmp_path / "broken.png").write_bytes(b"not an image")
    session, messages = bot.run_image(session, tmp_path / "broken.png")
    assert messages[-1]["content"].startswith("Sorry, I could not use that image: 'broken.png' is not an image")


def test_sessions_are_isolated(bot, square_image):
    a, _ = bot.run_image(None, square_image)
    b, _ = bot.run_text(None, "hello")
    assert a.id != b.id and a.conversation is not b.conversation
    assert b.messages[-1]["content"] == "Please upload an image first."  # b never sees a's upload
    a, _ = bot.run_text(a, "detect the edges of this image")
    assert not any(isinstance(m["content"], dict) for m in b.messages)
    assert "hello" not in a.conversation.memory.render() and "hello" in b.conversation.memory.render()
    a_files = sorted(p.name for p in (bot.image_root / a.id / "image").iterdir())
    assert len(a_files) == 2 and not any((bot.image_root / b.id / "image").iterdir())
    # b cannot reach a's files, even by name
    name = a_files[0]
    assert b.conversation.agent.toolbox.run(EDGE, f"image/{name}", b.conversation.workspace).text.startswith("Error:")
    assert b.conversation.agent.toolbox.run(EDGE, f"../{a.id}/image/{name}", b.conversation.workspace).text.startswith(
        "Error:"
    )


def test_concurrent_sessions_keep_their_own_results(bot, square_image):
    from concurrent.futures import ThreadPoolExecutor

    def one_user(_):
        session, messages = bot.submit(None, "detect the edges of this image", square_image)
        return session, [Path(p) for p in _images(messages)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one_user, range(4)))
    assert len({session.id for session, _ in results}) == 4
    for session, paths in results:
        assert len(paths) == 2 and all(p.parent == bot.image_root / session.id / "image" for p in paths)


def test_tool_error_and_unparseable_reply_never_crash(tmp_path, square_image):
    replies = [
        f"Thought: Do I need to use a tool? Yes\nAction: {EDGE}\nAction Input: image/doesnotexist.png\nObservation:",
        "Thought: Do I need to use a tool? Yes\nAction: Fly To The Moon\nAction Input: now\nObservation:",
        "I am not following the format at all",
    ]
    agent = Agent(ScriptedBackend(replies), Toolbox("Image2Canny_cpu"), max_steps=5)
    bot = ChatBot(agent, tmp_path)
    session, messages = bot.run_text(None, "edges please")
    thoughts = [m["content"] for m in messages if m.get("metadata")]
    assert "does not exist" in thoughts[0]
    assert "Fly To The Moon is not a valid tool, try another one." in thoughts[1]
    assert messages[-1] == {"role": "assistant", "content": "I am not following the format at all"}


def test_failing_backend_and_step_limit(tmp_path):
    class Broken:
        def generate(self, prompts, stop=(), gen=None):
            raise RuntimeError("server on fire")

    bot = ChatBot(Agent(Broken(), Toolbox("Image2Canny_cpu")), tmp_path)
    _, messages = bot.run_text(None, "hi")
    assert "server on fire" in messages[-1]["content"]

    loop = f"Thought: Do I need to use a tool? Yes\nAction: {EDGE}\nAction Input: nothing.png\nObservation:"
    bot = ChatBot(Agent(ScriptedBackend([loop]), Toolbox("Image2Canny_cpu"), max_steps=2), tmp_path)
    _, messages = bot.run_text(None, "hi")
    assert messages[-1]["content"].startswith("Agent stopped due to max iterations.")
    assert len([m for m in messages if m.get("metadata")]) == 2


def test_clear_forgets_history_but_keeps_the_session(bot, square_image):
    session, _ = bot.run_image(None, square_image)
    session, _ = bot.run_text(session, "detect the edges of this image")
    session_id = session.id
    session, messages = bot.clear(session)
    assert messages == [] and session.id == session_id
    assert session.conversation.memory.render() == ""
    session, messages = bot.run_text(session, "and now?")
    assert messages[-1]["content"] == "Please upload an image first."  # the old upload is forgotten
    assert bot.clear(None)[1] == []


def test_ended_session_folders_are_deleted_unless_kept(bot, square_image, tmp_path):
    import gradio as gr

    from g4t.app import Session, build_demo

    states = [b for b in build_demo(bot).blocks.values() if isinstance(b, gr.State)]
    assert len(states) == 1 and callable(states[0].delete_callback)  # what Gradio calls when it drops a session
    ended, _ = bot.run_image(None, square_image)
    alive, _ = bot.run_image(None, square_image)
    folder = bot.image_root / ended.id
    assert (folder / "image").is_dir()
    states[0].delete_callback(ended)
    assert not folder.exists() and (bot.image_root / alive.id / "image").is_dir()
    bot.end_session(None)  # a tab that never sent anything
    outside = tmp_path / "outside"
    outside.mkdir()
    bot.end_session(Session("../outside", alive.conversation))  # never leaves image_root
    assert outside.is_dir()
    bot.keep_files = True
    bot.end_session(alive)
    assert (bot.image_root / alive.id / "image").is_dir()


def test_build_demo_wires_enter_submit_stop_and_clear(bot):
    import gradio as gr

    from g4t.app import build_demo

    demo = build_demo(bot)
    assert isinstance(demo, gr.Blocks)
    config = demo.get_config_file()
    elem = {c["id"]: c["props"].get("elem_id") for c in config["components"]}
    deps = {(elem[d["targets"][0][0]], d["targets"][0][1], bool(d["backend_fn"])): d for d in config["dependencies"]}
    enter, button = deps["g4t-text", "submit", True], deps["g4t-submit", "click", True]
    # Enter and the button run the same handler with the same inputs and outputs, in one concurrency group
    assert (enter["inputs"], enter["outputs"]) == (button["inputs"], button["outputs"])
    assert demo.fns[enter["id"]].fn is demo.fns[button["id"]].fn
    assert demo.fns[enter["id"]].concurrency_id == demo.fns[button["id"]].concurrency_id == "turn"
    # Stop, Clear and the chat's trash icon cancel a running turn
    for trigger in [("g4t-stop", "click"), ("g4t-clear", "click"), ("g4t-chat", "clear")]:
        assert sorted(deps[(*trigger, False)]["cancels"]) == sorted([enter["id"], button["id"]])
    assert {
        enter["api_name"],
        deps["g4t-stop", "click", True]["api_name"],
        deps["g4t-clear", "click", True]["api_name"],
    } == {
        "submit",
        "stop",
        "clear",
    }


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


def test_published_flags_and_defaults(monkeypatch):
    cfg = parse_demo_args([])
    assert (cfg.model.base_model, cfg.model.lora_model, cfg.load) == ("auto", "auto", "auto")
    assert cfg.gen.constrain_tools  # local models decode listed tool names by default
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("g4t.demo_config._published_weights_reachable", lambda: (True, "cached"))
    resolve_auto(cfg)
    assert (cfg.model.base_model, cfg.model.lora_model) == (
        "lmsys/vicuna-13b-v1.1",
        "stevengrove/gpt4tools-vicuna-13b-lora",
    )
    assert resolve_layout(cfg) is TRAINING and resolve_template(cfg).name == "gpt4tools"
    assert resolve_auto(cfg) is cfg and cfg.model.base_model == "lmsys/vicuna-13b-v1.1"  # idempotent
    cfg = parse_demo_args(
        ["--server-name", "0.0.0.0", "--server-port", "7000", "--share", "--keep_last_n_paragraphs", "1"]
        + ["--load", "ImageCaptioning_cpu, Image2Canny_cpu", "--temperature", "0.7", "--do_sample", "--top_k", "5"]
    )
    assert (cfg.server_name, cfg.server_port, cfg.share, cfg.keep_last_n) == ("0.0.0.0", 7000, True, 1)
    assert (cfg.gen.temperature, cfg.gen.do_sample, cfg.gen.top_k) == (0.7, True, 5)


def test_auto_without_a_gpu_or_the_published_weights_runs_the_shipped_model_offline(monkeypatch, caplog):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with caplog.at_level("INFO", logger="g4t.demo_config"):
        cfg = resolve_auto(parse_demo_args([]))
    assert (cfg.model.base_model, cfg.model.lora_model) == ("gpt4tools-smollm2", "none")
    assert cfg.load.split(",")[:2] == ["Image2Canny_cpu", "CropImage_cpu"]  # no download needed
    logged = caplog.text
    assert "model: gpt4tools-smollm2 (no CUDA GPU is visible" in logged and "tools: Image2Canny_cpu" in logged
    assert "Image Captioning left out" in logged  # tests run with HF_HUB_OFFLINE=1 and an empty cache
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("g4t.demo_config._published_weights_reachable", lambda: (False, "the Hub is out of reach"))
    cfg = resolve_auto(parse_demo_args(["--load", "Image2Canny_cpu"]))
    assert cfg.model.base_model == "gpt4tools-smollm2" and cfg.load == "Image2Canny_cpu"  # an explicit --load wins
    cfg = resolve_auto(parse_demo_args(["--base_model", "/models/x"]))
    assert (cfg.model.base_model, cfg.model.lora_model) == ("/models/x", "none")
    cfg = parse_demo_args(["--openai_model", "m", "--constrain_tools"])
    assert not cfg.gen.constrain_tools  # a server cannot constrain decoding


def test_openai_chat_defaults_to_demo_layout_without_template():
    cfg = parse_demo_args(["--openai_base_url", "http://127.0.0.1:1/v1", "--openai_model", "m"])
    assert cfg.use_openai and resolve_layout(cfg) is DEMO and resolve_template(cfg) is None
    cfg = parse_demo_args(["--openai_model", "m", "--openai_mode", "completions"])
    assert resolve_layout(cfg) is TRAINING and resolve_template(cfg).name == "gpt4tools"
    cfg = parse_demo_args(["--openai_model", "m", "--prompt_layout", "training", "--template", "vicuna_v1.1"])
    assert resolve_layout(cfg) is TRAINING and resolve_template(cfg).name == "vicuna_v1.1"


def test_template_from_the_adapter_training_config(tmp_path):
    (tmp_path / "training_config.json").write_text(json.dumps({"prompt_template_name": "gpt4tools_vicuna"}))
    cfg = parse_demo_args(["--lora_model", str(tmp_path)])
    assert resolve_template(cfg).name == "gpt4tools_vicuna"
    assert resolve_template(parse_demo_args(["--lora_model", str(tmp_path), "--template", "none"])) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--load", "NoSuchTool_cpu"],
        ["--template", "nope"],
        ["--load_in_8bit", "--load_in_4bit"],
        ["--max_steps", "0"],
        ["--llm_device", "gpu7"],
        ["--temperature", "-1"],
        ["--tool_models", "ImageCaptioning"],
        ["--openai_base_url", "http://127.0.0.1:1/v1"],
    ],
)
def test_bad_flags_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        parse_demo_args(argv)
    assert e.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_build_agent_with_a_given_backend(tmp_path, tiny_blip):
    cfg = DemoConfig(load="ImageCaptioning_cpu,Image2Canny_cpu", tool_models=f"ImageCaptioning={tiny_blip}")
    agent = build_agent(cfg, backend=ScriptedBackend(["AI: ok"]))
    assert set(agent.toolbox.tools) == {"Get Photo Description", EDGE}
    assert agent.layout is TRAINING and agent.max_steps == cfg.max_steps


def test_tool_seed_and_offload_flags_reach_the_generation_tools():
    cfg = parse_demo_args(["--load", "Text2Image_cpu,Image2Canny_cpu", "--tool_seed", "7", "--offload_tools"])
    box = build_agent(cfg, backend=ScriptedBackend(["AI: ok"])).toolbox
    t2i = box.instances["Text2Image"]
    assert (t2i.seed, t2i.offload, t2i.next_seed(), t2i.home_device) == (7, True, 7, "cpu")
    default = build_agent(DemoConfig(load="Text2Image_cpu"), backend=ScriptedBackend(["AI: ok"])).toolbox
    assert default.instances["Text2Image"].seed is None and not default.instances["Text2Image"].offload


@pytest.fixture
def chat_server():
    """A local OpenAI-compatible server answering with ``edge_replies`` (streamed when asked)."""
    from testkit.fake_openai import FakeServer, scripted

    with FakeServer(scripted(edge_replies)) as server:
        yield server.base_url, server.requests


def test_openai_compatible_chat_server_end_to_end(chat_server, tmp_path, square_image, monkeypatch):
    pytest.importorskip("g4t.llm.openai_backend")
    url, received = chat_server
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    cfg = parse_demo_args(["--openai_base_url", url, "--openai_model", "served-model", "--load", "Image2Canny_cpu"])
    bot = ChatBot(build_agent(cfg), tmp_path, keep_last_n=cfg.keep_last_n)
    session, messages = bot.submit(None, "detect the edges of this image", square_image)
    assert len(_images(messages)) == 2 and messages[-2]["content"].startswith("Here are the edges: image/")
    assert received[0]["model"] == "served-model" and len(received) == 2
    assert all(body["stream"] for body in received)  # the demo streams the server's tokens
    prompt = received[0]["messages"][-1]["content"]
    assert (
        prompt.startswith("GPT4Tools can handle") and "The description is: an uploaded image." in prompt
    )  # demo layout
    assert "### ASSISTANT" not in prompt  # no template in chat mode
