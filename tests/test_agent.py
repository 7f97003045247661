"""The ReAct loop with scripted and tiny real models."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from g4t.agent import MAX_ITERATIONS_MESSAGE, STOP, Agent, Memory
from g4t.llm import GenerationConfig, LLMError, ModelLoadError, ScriptedBackend
from g4t.prompts import load_template
from g4t.tools import TOOL_CLASSES, TOOLS, Toolbox
from g4t.tools.registry import ToolModel, register_tool_class, tool

YES = "Thought: Do I need to use a tool? Yes\nAction: {tool}\nAction Input: {arg}\nObservation:\n"
NO = "Thought: Do I need to use a tool? No\nAI: {answer}\n"


def _last_image(prompt: str) -> str:
    return re.findall(r"image/\w{8}\.png", prompt)[-1]


def edge_script(prompt: str) -> str:
    """Call the edge tool on the last image of the prompt, then answer with the observation."""
    if not re.search(r"image/\w{8}\.png", prompt):
        return NO.format(answer="Please upload an image first.")
    if "Observation: image/" in prompt:
        return NO.format(answer=f"Here are the edges: {_last_image(prompt)}")
    return YES.format(tool="Edge Detection On Image", arg=_last_image(prompt))


@pytest.fixture
def toolbox():
    return Toolbox("Image2Canny_cpu,CropImage_cpu")


def test_scripted_agent_detects_real_edges(tmp_path, toolbox, square_image):
    backend = ScriptedBackend(edge_script)
    agent = Agent(backend, toolbox, load_template("gpt4tools"))
    conv = agent.conversation(tmp_path / "c1")
    upload, caption = conv.add_image(square_image)
    result = conv.run("Detect the edges of this image")
    assert len(result.steps) == 1 and result.steps[0].tool == "Edge Detection On Image"
    (image,) = result.images
    assert result.answer == f"Here are the edges: {conv.workspace.relative(image)}"
    edges = np.asarray(Image.open(image))
    assert edges.shape[2] == 3 and edges.max() == 255 and edges[:20].max() == 0
    # the prompts: training layout, wrapped in the alpaca template, image line in history
    first, second = backend.prompts
    assert first.endswith("Let's think step by step.\n\n### ASSISTANT:\n")
    assert f"Human: Provide an image named {upload}. Description: {caption} Understand" in first
    assert f"Action Input: {upload}\nObservation: {conv.workspace.relative(image)}\n\n### ASSISTANT:\n" in second


def test_demo_layout_scratchpad(tmp_path, toolbox, square_image):
    backend = ScriptedBackend(edge_script)
    conv = Agent(backend, toolbox, template=None, layout="demo").conversation(tmp_path)
    conv.add_image(square_image)
    conv.run("edges please")
    assert (
        "The description is: an uploaded image. Understand the image using tools.\nAI: Received." in backend.prompts[0]
    )
    assert backend.prompts[1].endswith("\nThought:")


def test_unknown_tool_then_answer(tmp_path, toolbox):
    backend = ScriptedBackend([YES.format(tool="Make Coffee", arg="now"), NO.format(answer="ok")])
    result = Agent(backend, toolbox).conversation(tmp_path).run("coffee")
    assert result.steps[0].observation == "Make Coffee is not a valid tool, try another one."
    assert result.answer == "ok"
    assert "Observation: Make Coffee is not a valid tool, try another one.\n" in backend.prompts[1]


def test_tool_that_raises_gives_an_error_observation(tmp_path, square_image):
    @register_tool_class("TestExploding")
    class Exploding(ToolModel):
        @tool("Explode", "always fails", inputs=("image",))
        def inference(self, image) -> str:
            raise RuntimeError("kaboom")

    try:
        backend = ScriptedBackend(
            lambda p: (
                NO.format(answer="sorry")
                if "Observation:" in p.split("New input")[-1]
                else YES.format(tool="Explode", arg=_last_image(p))
            )
        )
        conv = Agent(backend, Toolbox("TestExploding_cpu")).conversation(tmp_path)
        conv.add_image(square_image)
        result = conv.run("explode it")
        assert "kaboom" in result.steps[0].observation and result.steps[0].observation.startswith("Error: ")
        assert result.answer == "sorry"
    finally:
        del TOOL_CLASSES["TestExploding"], TOOLS["Explode"]


@pytest.mark.parametrize("reply", ["", "Yes", "I am an assistant.", "Action: \nAction Input:"])
def test_unparseable_reply_never_crashes(tmp_path, toolbox, reply):
    result = Agent(ScriptedBackend([reply]), toolbox).conversation(tmp_path).run("who are you?")
    assert result.answer and not result.steps


def test_llm_failure_is_reported(tmp_path, toolbox):
    class Failing:
        def generate(self, prompts, stop=(), gen=None):
            raise LLMError("server said 500 five times")

    result = Agent(Failing(), toolbox).conversation(tmp_path).run("hi")
    assert "server said 500" in result.answer


def test_step_limit(tmp_path, toolbox):
    backend = ScriptedBackend([YES.format(tool="Crop Image", arg="nope.png, [0, 0, 1, 1]")])
    result = Agent(backend, toolbox, max_steps=3).conversation(tmp_path).run("loop forever")
    assert result.stopped and len(result.steps) == 3 and result.answer.startswith(MAX_ITERATIONS_MESSAGE)


def test_memory_keeps_last_n_exchanges():
    memory = Memory(keep_last_n=2)
    memory.add_image("image/aaaaaaaa.png", "a cat")
    for i in range(3):
        memory.add(f"q{i}", f"a{i}")
    assert memory.render("training") == "Human: q1\nAI: a1\nHuman: q2\nAI: a2"
    memory.keep_last_n = 4
    assert memory.render("training").startswith("Human: Provide an image named image/aaaaaaaa.png. Description: a cat")
    assert memory.render("demo").startswith(
        "\nHuman: Provide an image named image/aaaaaaaa.png. The description is: a cat."
    )
    assert "\nAI: Received.\nHuman: q0\nAI: a0" in memory.render("demo")
    assert Memory(keep_last_n=0).render() == ""
    memory.clear()
    assert memory.render() == ""


def test_conversations_are_isolated(tmp_path, toolbox, square_image):
    backend = ScriptedBackend(edge_script)
    agent = Agent(backend, toolbox)
    alice, bob = agent.conversation(tmp_path / "alice"), agent.conversation(tmp_path / "bob")
    alice_image, _ = alice.add_image(square_image)
    alice.run("edges")
    bob.run("hello")
    bob_prompt = backend.prompts[-1]
    assert alice_image not in bob_prompt and "Human: edges" not in bob_prompt
    # bob cannot reach alice's file, even by name
    assert bob.agent.toolbox.run("Edge Detection On Image", alice_image, bob.workspace).text.startswith("Error: ")
    assert bob.agent.toolbox.run("Edge Detection On Image", f"../alice/{alice_image}", bob.workspace).text.startswith(
        "Error: "
    )


def test_tiny_llama_with_lora_runs_the_loop(tmp_path, tiny_llama, tiny_lora, square_image):
    from g4t.llm.hf import HFBackend

    gen = GenerationConfig(max_new_tokens=24)
    base = HFBackend.from_pretrained(tiny_llama)
    attached = HFBackend.from_pretrained(tiny_llama, tiny_lora)
    merged = HFBackend.from_pretrained(tiny_llama, tiny_lora, merge_lora=True)
    from peft import PeftModel

    assert isinstance(attached.model, PeftModel)
    assert type(merged.model).__name__ == "LlamaForCausalLM"
    prompt = ["Thought: Do I need to use a tool?"]
    assert attached.generate(prompt, gen=gen) == merged.generate(prompt, gen=gen)
    assert attached.generate(prompt, gen=gen) != base.generate(prompt, gen=gen)  # the LoRA changes the output

    agent = Agent(attached, Toolbox("Image2Canny_cpu"), load_template("gpt4tools"), max_steps=3, gen=gen)
    conv = agent.conversation(tmp_path)
    conv.add_image(square_image)
    result = conv.run("detect the edges")  # gibberish model: the loop must still end with an answer
    assert isinstance(result.answer, str) and result.answer
    assert len(result.steps) <= 3


def test_stop_strings_cut_generation(tiny_llama):
    from g4t.llm.hf import HFBackend

    backend = HFBackend.from_pretrained(tiny_llama)
    out = backend.generate(["a", "Thought: Do I need"], stop=STOP, gen=GenerationConfig(max_new_tokens=8))
    assert len(out) == 2 and all("\nObservation:" not in o for o in out)


def test_unloadable_model_gives_advice(tmp_path):
    from g4t.llm.hf import load_model

    with pytest.raises(ModelLoadError, match="--openai_base_url") as e:
        load_model(str(tmp_path / "missing-model"))
    assert "local directory" in str(e.value)
