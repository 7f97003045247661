"""Demo turn latency over a long chat, and page loads while another user's turn is slow.

Serves the real demo (``g4t.app``) on 127.0.0.1 with a scripted model that calls the real edge tool,
then, through the real HTTP API:

* ``api``: ``gradio_client`` (default settings: it downloads every file in an answer) sends 20 turns,
  each an image upload plus "detect the edges of this image" (each turn adds two images to the chat);
  latency of every turn, per conversation, ``--repeats`` conversations;
* ``browser``: the same 20 turns typed into the page in headless Chromium (Enter to the answer's edge
  image on screen);
* ``page_load``: ``GET /`` plus ``/config`` by another client, idle and while a turn burns CPU in pure
  Python for ``--slow_s`` seconds (the GIL-holding kind of slow that once froze the server).

Writes ``bench/results/chat_latency.json``: per mode, the median over repeats of turn 2 and turn 20
and their ratio (the goal: <= 2, i.e. no growth with the chat's length); median page loads idle and
during the slow turn. Before the change the same API measure gave 0.63 s at turn 2 and 3.90 s at
turn 20 (6.2x), the browser 0.35 s and 2.56 s (7.3x): every turn re-sent every image of the chat as a
file that Gradio hashed on the event loop and the client downloaded again.

    OMP_NUM_THREADS=1 .venv/bin/python bench/chat_latency.py            # ~3 min on 2 cores
    OMP_NUM_THREADS=1 .venv/bin/python bench/chat_latency.py --modes api --repeats 1
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from PIL import Image, ImageDraw  # noqa: E402

from g4t.data.io import atomic_write_json  # noqa: E402
from testkit.replies import edge_replies

RESULTS = Path(__file__).parent / "results" / "chat_latency.json"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


class SlowOnDemand:
    """``edge_replies``, except a prompt asking to "think hard" burns CPU in pure Python first."""

    def __init__(self, slow_s: float) -> None:
        self.slow_s = slow_s

    def __call__(self, prompt: str) -> str:
        if "think hard" in prompt:  # its own session: no other request in the prompt
            end, x = time.perf_counter() + self.slow_s, 0
            while time.perf_counter() < end:
                x = (x * 31 + 7) % 1_000_003  # holds the GIL, like a slow regex or tokenizer would
            return "Thought: Do I need to use a tool? No\nAI: done thinking"
        return edge_replies(prompt)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _picture(path: Path) -> Path:
    image = Image.new("RGB", (512, 512), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([64, 48, 300, 344], fill="black")
    for i in range(0, 512, 16):
        draw.line([i, 0, 511 - i, 511], fill=(i % 255, 100, 200))
    image.save(path)
    return path


def serve(root: Path, slow_s: float):
    """The demo on a free port: ``(url, demo)``."""
    from g4t.agent import Agent
    from g4t.app import ChatBot, build_demo, launch_demo
    from g4t.llm import ScriptedBackend
    from g4t.tools import Toolbox

    bot = ChatBot(Agent(ScriptedBackend(SlowOnDemand(slow_s)), Toolbox("Image2Canny_cpu"), max_steps=3), root)
    demo = build_demo(bot)
    port = _free_port()
    launch_demo(demo, bot, server_port=port, prevent_thread_lock=True, concurrency_limit=2)
    return f"http://127.0.0.1:{port}/", demo


def api_turns(url: str, picture: Path, turns: int) -> list[float]:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    seconds = []
    for _ in range(turns):
        start = time.perf_counter()
        messages, _, _ = client.predict("detect the edges of this image", handle_file(str(picture)), api_name="/submit")
        seconds.append(time.perf_counter() - start)
        assert "Here are the edges" in str(messages[-2:]), messages[-2:]
    return seconds


def browser_turns(browser, url: str, picture: Path, turns: int) -> list[float]:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    box = page.locator("#g4t-text textarea")
    box.wait_for()
    seconds = []
    for turn in range(1, turns + 1):
        page.locator("#g4t-image input[type=file]").set_input_files(str(picture))
        page.locator("#g4t-image [aria-label='Remove Image']").wait_for()
        box.fill("detect the edges of this image")
        start = time.perf_counter()
        box.press("Enter")
        page.wait_for_function(f"document.querySelectorAll('#g4t-chat img').length >= {2 * turn}")
        seconds.append(time.perf_counter() - start)
    page.context.close()
    return seconds


def page_loads(url: str, n: int) -> list[float]:
    import httpx

    seconds = []
    for _ in range(n):
        start = time.perf_counter()
        for path in ("", "config"):
            httpx.get(url + path, timeout=120).raise_for_status()
        seconds.append(time.perf_counter() - start)
    return seconds


def page_load_figures(url: str, n: int, slow_s: float) -> dict:
    from gradio_client import Client

    idle = page_loads(url, n)
    client = Client(url, verbose=False)
    job = client.submit("think hard, please", None, api_name="/submit")
    time.sleep(min(0.5, slow_s / 4))  # the turn is burning CPU now
    during = page_loads(url, n)
    still_running = not job.done()
    answer = job.result(timeout=slow_s + 120)[0][-1]
    return {
        "idle_s": round(statistics.median(idle), 3),
        "during_slow_turn_s": round(statistics.median(during), 3),
        "slow_turn_s": slow_s,
        "slow_turn_still_running_after_the_loads": still_running,
        "slow_turn_answer": str(answer["content"] if isinstance(answer, dict) else answer)[:200],
    }


def summary(runs: list[list[float]]) -> dict:
    """Median over runs of each turn; turn 2 vs the last turn."""
    per_turn = [statistics.median(run[i] for run in runs) for i in range(len(runs[0]))]
    return {
        "turn_2_s": round(per_turn[1], 3),
        f"turn_{len(per_turn)}_s": round(per_turn[-1], 3),
        "ratio": round(per_turn[-1] / per_turn[1], 2),
        "median_turn_s": [round(s, 3) for s in per_turn],
        "runs": [[round(s, 3) for s in run] for run in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="api,browser,page_load", help="comma-separated: api, browser, page_load")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="conversations per mode (medians over them)")
    parser.add_argument("--slow_s", type=float, default=4.0, help="CPU-bound seconds of the slow turn")
    parser.add_argument("--loads", type=int, default=5, help="page loads per measure")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    results = {"turns": args.turns, "repeats": args.repeats, "cpus": os.cpu_count(), "load_avg": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        picture = _picture(Path(tmp) / "picture.png")
        url, demo = serve(Path(tmp) / "sessions", args.slow_s)
        try:
            if "api" in modes:
                results["api"] = summary([api_turns(url, picture, args.turns) for _ in range(args.repeats)])
                print("api", {k: v for k, v in results["api"].items() if k.endswith(("_s", "ratio"))}, flush=True)
            if "browser" in modes and Path(CHROMIUM).exists():
                from playwright.sync_api import sync_playwright

                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    runs = [browser_turns(browser, url, picture, args.turns) for _ in range(args.repeats)]
                    browser.close()
                results["browser"] = summary(runs)
                print("browser", {k: v for k, v in results["browser"].items() if k.endswith(("_s", "ratio"))})
            if "page_load" in modes:
                results["page_load"] = page_load_figures(url, args.loads, args.slow_s)
                print("page_load", results["page_load"], flush=True)
        finally:
            demo.close()
    results["load_avg_after"] = os.getloadavg()[0]
    previous = {}
    if RESULTS.exists():
        import json

        previous = json.loads(RESULTS.read_text())
    atomic_write_json(RESULTS, {**previous, **results}, indent=2)  # a partial run keeps the other modes' figures
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
