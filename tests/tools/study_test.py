"""tools/study.py: the study file, resume and skip, results.json / results.md from a tiny study."""

import glob
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO, TINY_FLAGS, subprocess_env
from tfvidgen import study


def _write_study(path, **overrides) -> str:
    spec = {"name": "tiny", "description": "Two tiny G3ANs.", "flags": TINY_FLAGS,
            "train_steps": 2, "eval_every": 1, "eval_samples": 8, "sample_videos": 2,
            "evaluate": {"num_samples": 8, "repeats": 1, "classifier_steps": 5,
                         "metrics": ["is", "fd"]},
            "arms": [{"name": "a"}, {"name": "b", "model_params": {"z_motion": 2}}],
            **overrides}
    path.write_text(json.dumps(spec))
    return str(path)


@pytest.mark.parametrize("change,message", [
    ({"bogus": 1}, "unknown key(s) bogus in the study"),
    ({"arms": [{"name": "a"}, {"name": "a"}]}, "two arms are named 'a'"),
    ({"arms": [{"name": "a", "flags": ["--seed=3"]}]}, "--seed is set by the study"),
    ({"arms": [{"name": "a b"}]}, "needs a \"name\""),
    ({"evaluate": {"samples": 8}}, "unknown key(s) samples in \"evaluate\""),
    ({"seeds": []}, "\"seeds\" must be a non-empty list"),
    ({"evaluate": {"flags": ["--repeats=2"]}}, "--repeats is set by the study"),
])
def test_a_bad_study_file_is_refused_naming_the_key(change, message, tmp_path):
    with pytest.raises(ValueError) as raised:
        study.load_study(_write_study(tmp_path / "s.json", **change))
    assert message in str(raised.value)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "studies",
                                                              "*.json"))))
def test_the_example_studies_parse_and_name_existing_flagfiles(path):
    parsed = study.load_study(path)
    for arm in parsed.arms:
        for flag in arm.flags:
            if flag.startswith("--flagfile="):
                assert os.path.isfile(os.path.join(REPO, flag.split("=", 1)[1])), flag


def test_arms_become_train_commands_and_dry_run_lists_them(tmp_path):
    path = _write_study(tmp_path / "s.json", seeds=[0, 1], flagfile="configs/quickstart.cfg")
    parsed = study.load_study(path)
    job = study.jobs(parsed, "out", ["b"])[1]
    cmd = study.train_command(parsed, job, "out")
    assert cmd[3] == "--flagfile=configs/quickstart.cfg" and "--model_param=z_motion=2" in cmd
    assert cmd[-7:] == ["--seed=1", "--train_steps=2", "--eval_every=1", "--eval_samples=8",
                        "--eval_cache_dir=out/eval_cache", "--eval_classifier_steps=5",
                        f"--workdir={os.path.join('out', 'runs', 'b', 'seed1')}"]
    with pytest.raises(ValueError, match="--arms: no arm named c"):
        study.jobs(parsed, "out", ["c"])
    result = subprocess.run([sys.executable, "tools/study.py", f"--study={path}",
                             f"--out={tmp_path / 'out'}", "--arms=a", "--dry_run"], cwd=REPO,
                            env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "a seed=0: train 0 -> 2, then evaluate"
    assert "-m tfvidgen.train" in lines[1] and not any(line.startswith("b ") for line in lines)
    assert not (tmp_path / "out").exists()


def _fake_run(workdir, fd_curve, metrics, step=2):
    """A finished run's files as train and evaluate write them."""
    os.makedirs(os.path.join(workdir, "eval"))
    with open(os.path.join(workdir, "eval_curve.jsonl"), "w") as f:
        for s, fd in fd_curve:
            f.write(json.dumps({"step": s, "fd": fd, "is": 1.0}) + "\n")
    results = {n: {"mean": v, "std": 0.0, "values": [v], "better": b, "experimental_bound": r,
                   "mathematical_bound": 0.0}
               for n, (v, b, r) in metrics.items()}
    record = {"step": step, "protocol_key": "k", "results": results,
              "classifier_test_accuracy": 0.9,
              "protocol": {"num_samples": 8, "repeats": 1, "seed": 0,
                           "classifier": {"dataset": "synthetic_shapes", "resolution": 16,
                                          "num_frames": 4, "max_stride": 4}}}
    with open(os.path.join(workdir, "eval", "metrics.json"), "w") as f:
        json.dump(record, f)


def test_results_give_mean_and_std_over_seeds_and_whether_the_curve_still_falls(tmp_path,
                                                                                monkeypatch):
    parsed = study.load_study(_write_study(tmp_path / "s.json", seeds=[0, 1]))
    out = tmp_path / "out"
    for seed, fd in ((0, 10.0), (1, 14.0)):
        _fake_run(out / "runs" / "a" / f"seed{seed}", [(1, 30.0), (2, fd + 5)],
                  {"fd": (fd, "lower", 1.0), "is": (2.0 + seed, "higher", 4.0)})
    _fake_run(out / "runs" / "b" / "seed0", [(1, 20.0), (2, 25.0)],
              {"fd": (20.0, "lower", 1.0), "is": (1.5, "higher", 4.0)})
    monkeypatch.setattr(study, "still_frames_baseline", lambda p, w: {"fd": 50.0, "is": 1.1})
    results = study.collect(parsed, str(out), log=lambda *_: None)
    a, b = results["arms"]["a"], results["arms"]["b"]
    assert a["metrics"]["fd"]["mean"] == 12.0 and a["metrics"]["fd"]["std"] == pytest.approx(
        2.828427, abs=1e-6)                                # sample std of 10 and 14
    assert a["curve"] == {"steps": [1, 2], "fd": [30.0, 17.0], "best_step": 2,
                          "improving_at_end": True}
    assert b["curve"]["best_step"] == 1 and not b["curve"]["improving_at_end"]
    assert b["missing_seeds"] == [1] and results["not_finished"] == ["b seed=1"]
    table = study.markdown(results)             # columns in the requested order: is, fd
    assert "| real data (test) | - | - | 4.000 | 1.000 |" in table, table
    assert "| still real frames | - | - | 1.100 | 50.000 |" in table, table
    assert "| a | 2 | 2 | 2.500 +- 0.707 | 12.000 +- 2.828 | 1: 30.00, 2: 17.00 | 2 | yes |" \
        in table, table
    assert "| b | 1 of 2 | 2 | 1.500 | 20.000 | 1: 20.00, 2: 25.00 | 1 | no |" in table, table


def test_a_tiny_study_runs_a_piece_at_a_time_and_a_rerun_skips_what_is_done(tmp_path):
    path = _write_study(tmp_path / "s.json", eval_every=2)    # one evaluation per run: cheaper
    parsed = study.load_study(path)
    out = str(tmp_path / "out")
    commands, lines = [], []
    cwd = os.getcwd()
    os.chdir(REPO)                  # as the tool is launched (flagfile paths)
    try:
        def recording(cmd, *args):
            commands.append(cmd)
            return study.run_command(cmd, *args)

        assert study.run_study(parsed, out, arms=["a"], log=lines.append, run=recording) == 0
        assert [c[2] for c in commands] == ["tfvidgen.train", "tfvidgen.evaluate",
                                            "tfvidgen.sample"]
        first = json.loads(open(os.path.join(out, "results.json")).read())
        assert list(first["arms"]) == ["a"] and first["not_finished"] == ["b seed=0"]
        commands.clear()
        assert study.run_study(parsed, out, log=lines.append, run=recording) == 0
        assert [c[2] for c in commands] == ["tfvidgen.train", "tfvidgen.evaluate",
                                            "tfvidgen.sample"]
        assert all("runs/b/seed0" in " ".join(c) or "samples/b.png" in " ".join(c)
                   for c in commands)

        def refuse(cmd, *args):
            raise AssertionError(f"a finished study ran {cmd}")

        assert study.run_study(parsed, out, log=lines.append, run=refuse) == 0
    finally:
        os.chdir(cwd)
    assert any(line.startswith("[a seed=0] eval step 2 | fd=") for line in lines), lines
    assert any("ETA" in line for line in lines)
    results = json.loads(open(os.path.join(out, "results.json")).read())
    assert set(results["arms"]) == {"a", "b"} and results["not_finished"] == []
    (key, protocol), = results["protocols"].items()
    assert set(protocol["baseline"]) >= {"fd", "is"} and protocol["real_data"]["fd"] > 0
    for arm in results["arms"].values():
        assert arm["protocol_key"] == key and set(arm["metrics"]) == {"fd", "is"}
        assert arm["curve"]["steps"] == [2] and arm["sample"].endswith(".png")
        assert os.path.isfile(os.path.join(out, arm["sample"]))
    # One classifier for the whole study, shared by training-time and final evaluation.
    assert len(os.listdir(os.path.join(out, "eval_cache"))) == 2      # classifier-<key>, cache
    table = open(os.path.join(out, "results.md")).read()
    assert table.startswith("# Study tiny\n\nTwo tiny G3ANs.")
    assert "| still real frames |" in table and "![a](samples/a.png)" in table
