"""``bench/real_model.py``'s data stage: honest splits (no shared image, unseen tools never trained)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bench import real_model
from g4t.cli import parse_args


def test_data_stage_splits_are_disjoint_and_unseen_tools_never_trained(tmp_path):
    (cfg,) = parse_args(
        real_model.RealModelConfig,
        args=[
            "--work_dir",
            str(tmp_path),
            "--n_train",
            "120",
            "--n_eval",
            "30",
            "--balance_tools",
            "--chitchat_share",
            "0.5",
            "--sessions",
            "False",
            "--negatives_ratio",
            "0.3",
            "--rename_tools",
            "0",
        ],
    )
    files = real_model.make_data(cfg, tmp_path)
    data = {k: json.loads(p.read_text()) for k, p in files.items()}
    assert len(data["train"]) == 120 and all(len(data[s]) == 30 for s in real_model.SPLITS)
    calls = sum("Action:" in r["output"] for r in data["train"])
    assert calls == 120 - round(120 * cfg.answer_share)
    kinds = Counter(real_model._kind(r) for r in data["train"])
    assert kinds["chitchat", None] == round(120 * cfg.answer_share * cfg.chitchat_share)
    per_tool = [n for (kind, _), n in kinds.items() if kind == "call"]
    assert len(per_tool) >= 15 and max(per_tool) - min(per_tool) <= 1  # balanced over the trained tools
    unseen = set(cfg.unseen_tools)
    assert not any(real_model._uses(r | {"Action": []}, unseen) for r in data["train"])
    assert not any(t in r["output"] for r in data["train"] for t in unseen)
    assert all(real_model._uses(r, unseen) for r in data["unseen"])
    assert not any(real_model._uses(r, unseen) for r in data["seen"])
    # the teacher never saw the natural split's images, and no evaluation image is a training image
    replies = [json.loads(line) for line in (tmp_path / "data/replies.jsonl").read_text().splitlines()]
    natural = {json.loads(line)["file_name"] for line in Path(cfg.natural).read_text().splitlines() if line}
    assert natural and not natural & {r["file_name"] for r in replies}
    captions = {r["caption"] for r in replies}
    for split in real_model.SPLITS:
        assert len({r["id"] for r in data[split]}) == len(data[split])
    train_captions = {c for c in captions if any(c in r["instruction"] for r in data["train"][:40])}
    for split in ("seen", "unseen"):
        assert not any(c in r["instruction"] for r in data[split] for c in train_captions)
    assert real_model.make_data(cfg, tmp_path) == files  # a rerun reuses the stage
    # a new training mix keeps the evaluation records, so runs compare on the same records
    before = {s: files[s].read_bytes() for s in real_model.SPLITS}
    files["train"].unlink()
    (cfg2,) = parse_args(
        real_model.RealModelConfig,
        args=["--work_dir", str(tmp_path), "--n_train", "60", "--sessions", "False", "--negatives_ratio", "0.3"],
    )
    real_model.make_data(cfg2, tmp_path)  # the teacher's proportions
    mix = Counter(real_model._kind(r)[0] for r in json.loads(files["train"].read_text()))
    assert (
        sum(mix.values()) == 60 and mix["call"] == 60 - round(60 * cfg2.answer_share) and mix["relay"] > mix["chitchat"]
    )
    assert {s: files[s].read_bytes() for s in real_model.SPLITS} == before


def test_sessions_take_whole_sessions_and_train_with_shared_prefixes(tmp_path):
    (cfg,) = parse_args(
        real_model.RealModelConfig,
        args=["--work_dir", str(tmp_path), "--n_train", "80", "--n_eval", "10", "--sessions", "--rename_tools", "0"],
    )
    files = real_model.make_data(cfg, tmp_path)
    train = json.loads(files["train"].read_text())
    assert len(train) == 80
    everything = json.loads((tmp_path / "data/train_all.json").read_text())
    prefix = real_model.session_key
    sessions = Counter(prefix(r) for r in everything)
    picked = Counter(prefix(r) for r in train)
    assert len(picked) < 40  # sessions of several records, not 80 strangers
    whole = [k for k in picked if picked[k] == sessions[k]]
    assert len(whole) >= len(picked) - 1  # every session whole but the last one taken
    kinds = Counter(real_model._kind(r)[0] for r in train)
    assert kinds["call"] and kinds["relay"] and kinds["chitchat"]
    # a rerun with other data settings is refused instead of mixing recipes
    (other,) = parse_args(
        real_model.RealModelConfig,
        args=[
            "--work_dir",
            str(tmp_path),
            "--n_train",
            "80",
            "--n_eval",
            "10",
            "--negatives_ratio",
            "0.9",
            "--sessions",
            "False",
        ],
    )
    with pytest.raises(SystemExit, match="negatives_ratio 0.6 -> 0.9.*sessions True -> False"):
        real_model.make_data(other, tmp_path)
    assert real_model.make_data(cfg, tmp_path) == files  # the same settings reuse it
    # --rename_tools: the same records with made-up tool names, sessions still sharing one prompt
    evals = {s: files[s].read_bytes() for s in real_model.SPLITS}
    files["train"].unlink()
    (renamed_cfg,) = parse_args(
        real_model.RealModelConfig,
        args=["--work_dir", str(tmp_path), "--n_train", "80", "--n_eval", "10", "--rename_tools", "0.5"],
    )
    real_model.make_data(renamed_cfg, tmp_path)
    renamed = json.loads(files["train"].read_text())
    changed = [a for a, b in zip(train, renamed, strict=True) if a != b]
    assert changed and len(changed) < len(train)
    assert len(Counter(prefix(r) for r in renamed)) == len(picked)
    assert {s: files[s].read_bytes() for s in real_model.SPLITS} == evals
    # a training set stamped before the knob existed was made without renaming: refused for 0.5
    stamp = tmp_path / "data/train.recipe.json"
    stamp.write_text(json.dumps({k: v for k, v in json.loads(stamp.read_text()).items() if k != "rename_tools"}))
    with pytest.raises(SystemExit, match="rename_tools 0.0 -> 0.5"):
        real_model.make_data(renamed_cfg, tmp_path)


def test_full_finetune_trains_a_model_folder_and_evaluates_it_without_an_adapter(tmp_path, tiny_llama):
    (cfg,) = parse_args(
        real_model.RealModelConfig,
        args=["--work_dir", str(tmp_path), "--base_model", tiny_llama, "--n_train", "16", "--n_eval", "3"]
        + ["--full_finetune", "--batch_size", "8", "--micro_batch_size", "8", "--curve_points", "2", "--curve_n", "2"]
        + ["--dtype", "float32", "--max_new_tokens", "8", "--warmup_steps", "0", "--learning_rate", "1e-3"],
    )
    files = real_model.make_data(cfg, tmp_path)
    model, figures = real_model.train(cfg, tmp_path, files["train"])
    assert model == tmp_path / "model" and (model / "model.safetensors").is_file()
    assert not (model / "adapter_config.json").exists()
    assert figures["samples"] == 16 and figures["steps"] == 2
    saved = json.loads((model / "training_config.json").read_text())
    assert saved["full_finetune"] and saved["resolved"]["shared_prefix"]  # sessions train with shared prefixes
    stamp = (model / "model.safetensors").stat().st_mtime_ns
    assert real_model.train(cfg, tmp_path, files["train"])[0] == model  # a rerun reuses the model
    assert (model / "model.safetensors").stat().st_mtime_ns == stamp
    (lora,) = parse_args(real_model.RealModelConfig, args=["--work_dir", str(tmp_path), "--full_finetune", "False"])
    with pytest.raises(SystemExit, match="trained with --full_finetune True; use another --work_dir"):
        real_model.train(lora, tmp_path, files["train"])  # its predictions would pass for the adapter's
    tuned = real_model.evaluate(cfg, tmp_path, "fine_tuned_seen", files["seen"], str(model))
    assert tuned["n"] == 3 and set(real_model.METRIC_KEYS) <= set(tuned)
    # the curve evaluates the intermediate checkpoint as a model folder too
    real_model.evaluate(cfg, tmp_path, "zero_shot_seen", files["seen"])
    points = real_model.curve(cfg, tmp_path, files["seen"], model, cfg.batch_size, 16)
    assert [p["samples"] for p in points] == [0, 8, 16]
    # the constrained rows: the same records decoded with inference.py --constrain_tools, in the table and plot
    constrained = real_model.evaluate(
        cfg, tmp_path, "fine_tuned_constrained_seen", files["seen"], str(model), constrain=True
    )
    assert constrained["n"] == 3 and (tmp_path / "pred/fine_tuned_constrained_seen/figures.json").is_file()
    result = {row: dict.fromkeys(real_model.SPLITS, tuned) for row in real_model.ROWS}
    result["fine_tuned_constrained"] = dict.fromkeys(real_model.SPLITS, constrained)
    result |= {"train": figures, "curve": points, "adapter": str(model), "recipe": {"full_finetune": True}}
    table = real_model.report(cfg, result)
    assert "| fine-tuned, constrained | unseen | 3 |" in table and table.count("by record kind") == 2
    assert "| zero-shot | seen |" in table
    assert "constrained" not in real_model.report(
        cfg, {k: v for k, v in result.items() if k != "fine_tuned_constrained"}
    )
    real_model.plot(result, tmp_path / "table.png")
    assert (tmp_path / "table.png").stat().st_size > 0
    # every record kind is counted once, and a wrong answer says why
    assert sum(c["n"] for c in tuned["by_kind"].values()) == 3
    pool = json.loads((tmp_path / "data/train_all_val_seen.json").read_text())
    call = next(r for r in pool if r.get("Action")) | {"id": 0}
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
    assert scored["by_kind"][real_model._eval_kind(call)]["wrong_tool"] == 1
    assert scored["by_kind"][real_model._eval_kind(answer)]["bad_format"] == 1


def test_the_learning_rate_follows_the_recipe_unless_given():
    lr = lambda *args: parse_args(real_model.RealModelConfig, args=list(args))[0].learning_rate  # noqa: E731
    assert lr() == 2e-4 and lr("--full_finetune", "False") == 1e-3 and lr("--learning_rate", "5e-5") == 5e-5
