"""``bench/real_model.py``: committed evaluation records, honest training data (no evaluation image, no
held-out tool), and the train -> ship -> evaluate -> report chain on a tiny model."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bench import real_model
from g4t.cli import parse_args
from g4t.data.build import session_key
from g4t.evaluation.kinds import record_kind


def _cfg(tmp_path, *args):
    return parse_args(real_model.RealModelConfig, args=["--work_dir", str(tmp_path), *args])[0]


def test_the_committed_evaluation_records_are_fixed_large_enough_and_name_their_images():
    excluded = set(json.loads(real_model.EXCLUDED.read_text()))
    unseen = set(real_model.RealModelConfig().unseen_tools)
    for split in real_model.SPLITS:
        records = json.loads((real_model.EVAL_DIR / f"{split}.json").read_text())
        assert len(records) >= 200 and len({r["id"] for r in records}) == len(records)
        assert {r["filename"] for r in records} - {""} <= excluded  # every evaluation image is kept out of training
        if split == "unseen":
            assert all(real_model._uses(r, unseen) for r in records)
        if split == "seen":
            assert not any(real_model._uses(r, unseen) for r in records)
    followup = json.loads((real_model.EVAL_DIR / "followup.json").read_text())
    kinds = Counter(record_kind(r) for r in followup)
    assert kinds["chitchat"] >= 150 and kinds["call"] + kinds["chain"] >= 40
    # a follow-up comes after an earlier exchange in the chat history, as the demo's memory writes it
    assert all("\nHuman: " in r["instruction"].split("New input: ")[0].split("Received.")[1] for r in followup)
    # the make_eval stage reads them, it never rebuilds them
    assert real_model.make_eval(real_model.RealModelConfig())["seen"] == real_model.EVAL_DIR / "seen.json"


def test_training_data_leaves_out_every_evaluation_image_and_held_out_tool(tmp_path):
    cfg = _cfg(tmp_path, "--n_train", "120")
    files = real_model.make_data(cfg, tmp_path)
    train = json.loads(files["train"].read_text())
    assert len(train) == 120
    captions = {c["file_name"]: c["caption"] for c in json.loads(open(cfg.captions).read())}
    held_out = [captions[f] for f in json.loads(real_model.EXCLUDED.read_text()) if f in captions]
    everything = json.loads((tmp_path / "data/train_all.json").read_text())
    assert not any(c in r["instruction"] for r in everything for c in held_out)
    unseen = set(cfg.unseen_tools)
    assert not any(t in r["output"] for r in everything for t in unseen)
    # whole sessions; some requests and chit-chat come in the middle of a chat
    sessions, picked = Counter(map(session_key, everything)), Counter(map(session_key, train))
    assert len(picked) < 60 and sum(picked[k] == sessions[k] for k in picked) >= len(picked) - 1
    with_history = [
        r for r in everything if "\nHuman: " in r["instruction"].split("Received.")[-1].split("New input")[0]
    ]
    assert with_history and any("Do I need to use a tool? No" in r["output"] for r in with_history)
    assert real_model.make_data(cfg, tmp_path) == files  # a rerun reuses the stage
    with pytest.raises(SystemExit, match="history_share 0.5 -> 0.1"):
        real_model.make_data(_cfg(tmp_path, "--n_train", "120", "--history_share", "0.1"), tmp_path)


def test_train_ship_evaluate_and_report_on_a_tiny_model(tmp_path, tiny_llama):
    cfg = _cfg(
        tmp_path,
        *["--base_model", tiny_llama, "--n_train", "16", "--batch_size", "8", "--micro_batch_size", "8"],
        *["--curve_points", "2", "--curve_n", "2", "--dtype", "float32", "--max_new_tokens", "8"],
        *["--warmup_steps", "0", "--learning_rate", "1e-3", "--ship_rank", "4"],
    )
    files = real_model.make_data(cfg, tmp_path)
    model, figures = real_model.train(cfg, tmp_path, files["train"])
    assert (model / "model.safetensors").is_file() and figures["samples"] == 16 and figures["steps"] == 2
    assert json.loads((model / "training_config.json").read_text())["resolved"]["shared_prefix"]
    shipped = real_model.ship(cfg, tmp_path, model)
    assert (shipped / "config.json").is_file() and (tmp_path / "delta/delta.safetensors").is_file()
    # the records are cut to 3 so the tiny model decodes little
    small = tmp_path / "seen3.json"
    small.write_text(json.dumps(json.loads(files["seen"].read_text())[:3]))
    tuned = real_model.evaluate(cfg, tmp_path, "fine_tuned_seen", small, str(shipped))
    assert tuned["n"] == 3 and set(real_model.METRIC_KEYS) <= set(tuned)
    assert sum(c["n"] for c in tuned["by_kind"].values()) == 3
    constrained = real_model.evaluate(cfg, tmp_path, "fine_tuned_constrained_seen", small, str(shipped), constrain=True)
    real_model.evaluate(cfg, tmp_path, "uncompressed_seen", small, str(model))
    zero = real_model.evaluate(cfg, tmp_path, "zero_shot_seen", small)  # another base: cached in work_dir
    assert (tmp_path / "pred/zero_shot_seen/figures.json").is_file()
    (tmp_path / "pred/zero_shot_seen").rename(tmp_path / "zs")
    real_model.ZERO_SHOT_DIR, saved_dir = tmp_path, real_model.ZERO_SHOT_DIR
    try:
        (tmp_path / "zs").rename(tmp_path / "zero_shot_seen")
        points = real_model.curve(cfg, tmp_path, small, model, figures)
    finally:
        real_model.ZERO_SHOT_DIR = saved_dir
    assert [p["samples"] for p in points] == [0, 8, 16] and points[-1]["minutes"] == figures["minutes"]
    result = {row: dict.fromkeys(real_model.SPLITS, tuned) for row in real_model.ROWS}
    result |= {
        "fine_tuned_constrained": dict.fromkeys(real_model.SPLITS, constrained),
        "zero_shot": dict.fromkeys(real_model.SPLITS, zero),
    }
    result |= {"uncompressed": {"seen": tuned}, "train": figures, "curve": points, "recipe": {}}
    result["shipped"] = {"base_model": "gpt4tools-smollm2", "lora_model": "none", "rank": 4}
    table = real_model.report(cfg, result)
    assert "| fine-tuned, constrained | followup | 3 |" in table and "| fine-tuned, full weights | seen |" in table
    assert "--base_model gpt4tools-smollm2 --lora_model none" in table
    real_model.plot(result, tmp_path / "table.png")
    assert (tmp_path / "table.png").stat().st_size > 0


def test_scores_say_why_a_record_is_wrong(tmp_path):
    pool = json.loads((real_model.EVAL_DIR / "seen.json").read_text())
    call = next(r for r in pool if r.get("Action") and len(r["Action"]) == 1) | {"id": 0}
    answer = next(r for r in pool if not r.get("Action")) | {"id": 1}
    (tmp_path / "ann.json").write_text(json.dumps([call, answer]))
    perfect = [{"id": r["id"], "output": r["instruction"] + r["output"]} for r in (call, answer)]
    other = "Detection" if call["Action"][0] == "Crop Image" else "Crop Image"
    wrong = [
        perfect[0] | {"output": perfect[0]["output"].replace(f"Action: {call['Action'][0]}\n", f"Action: {other}\n")},
        perfect[1] | {"output": answer["instruction"] + "I cannot say."},
    ]
    for name, preds in (("perfect", perfect), ("wrong", wrong)):
        (tmp_path / f"{name}.json").write_text(json.dumps(preds))
    assert real_model._scores(tmp_path / "ann.json", tmp_path / "perfect.json")["SR"] == 1.0
    scored = real_model._scores(tmp_path / "ann.json", tmp_path / "wrong.json")
    assert scored["SR"] == 0.0 and scored["tool_choice_acc"] == 0.0
    assert scored["by_kind"][record_kind(call)]["wrong_tool"] == 1
    assert scored["by_kind"][record_kind(answer)]["bad_format"] == 1
