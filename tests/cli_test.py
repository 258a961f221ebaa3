"""Flags <-> config: one flag per field, strict values, clear one-line errors at start-up."""

import dataclasses
import os
import subprocess
import sys

import pytest

from tfvidgen import cli, config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_config_field_has_exactly_one_flag_and_back():
    fields = {(group, f.name) for group, cls in (("data", config.DataConfig),
                                                  ("train", config.TrainConfig),
                                                  ("runtime", config.RuntimeConfig))
              for f in dataclasses.fields(cls)}
    assert set(cli.FLAG_FIELDS.values()) == fields
    assert len(cli.FLAG_FIELDS) == len(fields)


def test_config_validation_names_the_flag():
    with pytest.raises(ValueError, match=r"--batch_size=0 is invalid"):
        config.Config(train=config.TrainConfig(batch_size=0)).validate()
    with pytest.raises(ValueError, match=r"--resolution=8"):
        config.Config(data=config.DataConfig(resolution=8)).validate()
    with pytest.raises(ValueError, match=r"--data_dir"):
        config.Config(data=config.DataConfig(dataset="records")).validate()
    with pytest.raises(ValueError, match=r"--profile_steps"):
        config.Config(runtime=config.RuntimeConfig(profile_steps=(5, 2))).validate()


def test_config_json_round_trip():
    original = config.Config(model_params={"conditional": True},
                             runtime=config.RuntimeConfig(profile_steps=(1, 3))).validate()
    assert config.Config.from_json(original.to_json()) == original


@pytest.mark.parametrize("flag,message", [
    ("--batch_size=0", "--batch_size=0 is invalid"),
    ("--strategy=bogus", "--strategy=bogus"),                 # absl's enum check
    ("--train_steps=ten", "--train_steps=ten"),               # absl's integer parser
    ("--no_such_flag=1", "'no_such_flag'"),                   # absl: unknown flag
    ("--model_param=nope=1", "'nope' is not a g3an parameter"),
    ("--num_frames=6", "--num_frames=6"),
    ("stray_argument", "unexpected arguments: stray_argument"),
])
def test_bad_flag_values_fail_at_start_up_naming_the_flag(flag, message, tmp_path):
    """README: a bad flag value exits 2 with one line naming the flag (absl's own errors too)."""
    result = subprocess.run([sys.executable, "-m", "tfvidgen.train", f"--workdir={tmp_path}",
                             "--dry_run", flag], cwd=REPO, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "FATAL" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("train: error:")]
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
    assert not os.listdir(tmp_path)                 # nothing written


def test_dry_run_prints_the_resolved_config_from_a_flagfile():
    result = subprocess.run([sys.executable, "-m", "tfvidgen.train",
                             "--flagfile=configs/quickstart.cfg", "--dry_run"], cwd=REPO,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr
    resolved = config.Config.from_json(result.stdout)
    assert resolved.data.resolution == 32 and resolved.model_params["base_channels"] == 16


def test_each_model_checks_its_own_resolution():
    from tfvidgen import models
    at = lambda model, size: config.Config(
        model=model, data=config.DataConfig(resolution=size, num_frames=8)).validate()
    with pytest.raises(ValueError, match=r"--resolution=48"):
        models.model_config(at("g3an", 48), 1)
    assert models.model_config(at("mvt_tsa", 96), 8).resolution == 96


ENTRY_POINTS = ("train", "sample", "evaluate", "transfer", "explain", "export")


def _source(name):
    with open(os.path.join(REPO, "tfvidgen", f"{name}.py")) as f:
        return f.read()


def test_entry_points_are_guarded_and_import_no_other_entry_point():
    import ast
    import importlib
    for name in ENTRY_POINTS:
        assert importlib.import_module(f"tfvidgen.{name}").main.guarded_cmd == name
        imported = set()
        for node in ast.walk(ast.parse(_source(name))):
            if isinstance(node, ast.ImportFrom) and node.module == "tfvidgen":
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfvidgen."):
                imported.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                imported |= {a.name.split(".")[1] for a in node.names
                             if a.name.startswith("tfvidgen.")}
        assert not imported & (set(ENTRY_POINTS) - {name}), (name, sorted(imported))


def test_only_cli_reads_flags_and_defines_the_shared_ones():
    import glob
    for path in glob.glob(os.path.join(REPO, "tfvidgen", "*.py")):
        if os.path.basename(path) == "cli.py":
            continue
        with open(path) as f:
            text = f.read()
        assert "FLAGS." not in text and "= flags.FLAGS" not in text, path
        for shared in ('"seed"', '"fps"', '"output"', '"workdir"', '"saved_model"'):
            assert f"DEFINE_string({shared}" not in text and \
                f"DEFINE_integer({shared}" not in text, (path, shared)
    assert cli.DEFAULT_FPS == 8


@pytest.mark.parametrize("name,flags,message", [
    ("sample", [], "give exactly one of --workdir or --saved_model"),
    ("evaluate", ["--workdir=w", "--saved_model=s"], "give exactly one of --workdir or "
                                                     "--saved_model"),
    ("transfer", [], "give exactly one of --workdir or --saved_model"),
    ("explain", ["--view=saliency_d"], "--workdir is required"),
    ("export", [], "--workdir is required"),
    ("sample", ["--workdir=w", "--seed=-1"], "--seed=-1 is outside [0, 2**62]"),
    ("evaluate", ["--workdir=w", f"--seed={2 ** 62 + 1}"], f"--seed={2 ** 62 + 1} is outside "
                                                            f"[0, 2**62]"),
    ("explain", ["--workdir=w", "--view=saliency_d", "--seed=-1"],
     "--seed=-1 is outside [0, 2**62]"),
    ("train", ["--dry_run", "--seed=-1"], "--seed=-1 is outside [0, 2**62]"),
])
def test_entry_points_name_sources_and_seeds_alike(name, flags, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", f"tfvidgen.{name}", *flags], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO})
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"{name}: error:")]
    assert result.returncode == 2 and lines == [f"{name}: error: {message}"], result.stderr[-2000:]
    assert not os.listdir(tmp_path)
