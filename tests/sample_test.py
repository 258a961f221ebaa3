"""Sampling: latent arrangements for disentanglement, and the CLI end to end on a trained workdir,
including its one-line errors and warnings."""

import json
import os
import subprocess
import sys

import av
import imageio.v3 as iio
import numpy as np
import pytest

from tests.cli_helpers import (DISK_FULL_ON_PARTIAL, assert_one_error_line, needs_mount, run,
                               run_on_tmpfs, run_patched, tmpfs_contents)
from tfvidgen import config, sampling, sources, viz

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sample_cmd(*flags):
    return [sys.executable, "-m", "tfvidgen.sample", *flags]


ROLES = {"z_appearance": "appearance", "z_motion": "motion"}


def _latents(n, offset):
    rng = np.random.default_rng(offset)
    return {"z_appearance": rng.normal(size=(n, 3)).astype(np.float32),
            "z_motion": rng.normal(size=(n, 2)).astype(np.float32)}


def test_fix_appearance_and_motion():
    base, other = _latents(4, 0), _latents(4, 1)
    fixed, _ = sampling.arrange_latents(base, other, "appearance", "none", 4, ROLES)
    assert np.all(fixed["z_appearance"] == base["z_appearance"][0])
    np.testing.assert_array_equal(fixed["z_motion"], base["z_motion"])
    fixed, _ = sampling.arrange_latents(base, other, "motion", "none", 4, ROLES)
    assert np.all(fixed["z_motion"] == base["z_motion"][0])


def test_grid_rows_share_appearance_columns_share_motion():
    base = _latents(9, 0)
    grid, columns = sampling.arrange_latents(base, base, "grid", "none", 9, ROLES)
    assert columns == 3
    za, zm = grid["z_appearance"].reshape(3, 3, -1), grid["z_motion"].reshape(3, 3, -1)
    assert np.all(za == za[:, :1]) and np.all(zm == zm[:1])
    assert not np.allclose(za[0, 0], za[1, 0]) and not np.allclose(zm[0, 0], zm[0, 1])


def test_interpolation_endpoints():
    base, other = _latents(5, 0), _latents(5, 1)
    out, _ = sampling.arrange_latents(base, other, "none", "motion", 5, ROLES)
    np.testing.assert_allclose(out["z_motion"][0], base["z_motion"][0])
    np.testing.assert_allclose(out["z_motion"][-1], other["z_motion"][0])
    assert np.all(out["z_appearance"] == base["z_appearance"][0])


def test_train_cli_writes_profile_flags_and_progress(trained_workdir):
    workdir, result = trained_workdir
    assert "step 3/3" in result.stdout and "videos/s" in result.stdout
    profiles = [f for root, _, files in os.walk(workdir / "tensorboard" / "plugins" / "profile")
                for f in files if f.endswith(".xplane.pb")]
    assert profiles
    assert "--batch_size=4" in (workdir / "flags.cfg").read_text()


@pytest.mark.parametrize("suffix", [".gif", ".mp4", ".png"])
def test_sample_cli_writes_a_readable_file(trained_workdir, tmp_path, suffix):
    workdir, _ = trained_workdir
    out = tmp_path / f"s{suffix}"
    result = subprocess.run([sys.executable, "-m", "tfvidgen.sample", f"--workdir={workdir}",
                             "--num_videos=4", "--seed=3", f"--output={out}"], cwd=REPO,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    if suffix == ".gif":
        frames = iio.imread(out, index=None)
        assert frames.shape[0] == 4 and frames.shape[1:3] == (33, 33)  # 2x2 grid of 16 px + 1 px gap
        again = tmp_path / "again.gif"
        subprocess.run([sys.executable, "-m", "tfvidgen.sample", f"--workdir={workdir}",
                        "--num_videos=4", "--seed=3", f"--output={again}"], cwd=REPO, timeout=300,
                       capture_output=True)
        assert again.read_bytes() == out.read_bytes()            # --seed is reproducible
    elif suffix == ".mp4":
        with av.open(str(out)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 4
    else:
        grid = iio.imread(out)
        assert grid.shape[:2] == (4 * 17 - 1, 4 * 17 - 1)        # 4 videos x 4 frames


def test_sample_cli_errors_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tfvidgen.sample", f"--workdir={tmp_path}"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "sample: error: --workdir=" in result.stderr and "config.json" in result.stderr


def test_video_count_grid_rounds_up_and_conflicts_are_errors(capsys):
    assert sampling.video_count(9, "grid", "none") == 9
    assert sampling.video_count(5, "none", "none") == 5
    assert capsys.readouterr().err == ""
    assert sampling.video_count(3, "grid", "none") == 4
    assert sampling.video_count(10, "grid", "none") == 16
    assert capsys.readouterr().err.splitlines() == [
        "sample: warning: --fix=grid needs a square --num_videos; writing 4 videos (2x2) "
        "instead of 3",
        "sample: warning: --fix=grid needs a square --num_videos; writing 16 videos (4x4) "
        "instead of 10"]
    with pytest.raises(ValueError, match="--fix=grid and --interpolate=motion cannot be combined"):
        sampling.video_count(4, "grid", "motion")


def test_seed_range_is_the_one_of_every_entry_point():
    top = 2 ** 62
    assert config.check_seed(0) == 0 and config.check_seed(top) == top
    for seed in (-1, top + 1, 2 ** 63 - 1, 2 ** 64):
        with pytest.raises(ValueError, match=f"^--seed={seed} is outside \\[0, 2\\*\\*62\\]$"):
            sampling.check_request(8, seed, "none", "none", None, None, None)


@pytest.mark.parametrize("flags,fragment", [
    (["--seed=9223372036854775807"], "--seed=9223372036854775807 is outside [0, 2**62]"),
    (["--label=1", "--fix=grid", "--interpolate=both"], "cannot be combined"),
    (["--output=samples.avi"], "--output='samples.avi': expected a file name ending in"),
    (["--directions=off:0", "--directions=spin:2"], "--directions='spin:2': expected off:I"),
    (["--directions=scale:1:fast"], "--directions=scale:1:fast: 'fast' is not a number"),
])
def test_requests_that_cannot_take_effect_fail_before_loading_a_model(flags, fragment, tmp_path):
    result = run(sample_cmd(f"--workdir={tmp_path / 'no_such_run'}", *flags), timeout=120)
    assert_one_error_line(result, "sample", fragment)       # not "has no config.json": checked first


def test_output_that_is_a_directory_fails_up_front_and_leaves_nothing(tmp_path):
    out = tmp_path / "videos.gif"
    out.mkdir()
    result = run(sample_cmd(f"--workdir={tmp_path / 'no_such_run'}", f"--output={out}"),
                 timeout=120)
    assert_one_error_line(result, "sample", f"--output='{out}' is a directory")
    assert sorted(os.listdir(tmp_path)) == ["videos.gif"] and not os.listdir(out)
    blocked = tmp_path / "file"
    blocked.write_text("")
    result = run(sample_cmd(f"--workdir={tmp_path}", f"--output={blocked / 's.gif'}"), timeout=120)
    assert_one_error_line(result, "sample", f"{blocked} is a file, not a directory")


def test_label_on_an_unconditional_model_is_an_error(trained_workdir, tmp_path):
    workdir, _ = trained_workdir
    result = run(sample_cmd(f"--workdir={workdir}", "--label=2", f"--output={tmp_path / 's.gif'}"))
    assert_one_error_line(result, "sample", "--label=2: this model is unconditional")
    assert not os.listdir(tmp_path)


def test_grid_with_a_non_square_count_warns_and_writes_the_next_square(trained_workdir, tmp_path):
    workdir, _ = trained_workdir
    out = tmp_path / "grid.gif"
    result = run(sample_cmd(f"--workdir={workdir}", "--fix=grid", "--num_videos=3",
                            f"--output={out}"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "sample: warning: --fix=grid needs a square --num_videos; writing 4 videos (2x2)" \
        in result.stderr
    assert "wrote 4 videos" in result.stdout
    assert iio.imread(out, index=None).shape[1:3] == (33, 33)       # 2x2 grid of 16 px + 1 px gap


def test_largest_allowed_seed_samples(trained_workdir, tmp_path):
    workdir, _ = trained_workdir
    grids = {}
    for seed in (0, 2 ** 62):
        out = tmp_path / f"s{seed}.png"
        result = run(sample_cmd(f"--workdir={workdir}", "--num_videos=2", f"--seed={seed}",
                                "--interpolate=both", f"--output={out}"))
        assert result.returncode == 0, result.stderr[-2000:]
        grids[seed] = iio.imread(out)
    top = grids[2 ** 62]
    assert top.shape == (2 * 17 - 1, 4 * 17 - 1, 3)          # 2 videos x 4 frames of 16 px
    assert top[:16].std() > 0                                  # a picture, not a blank
    assert np.abs(top.astype(int) - grids[0]).max() > 0        # other seeds, other videos


@pytest.mark.parametrize("suffix", [".gif", ".png"])
def test_disk_full_while_writing_is_one_line_and_leaves_nothing_simulated(trained_workdir,
                                                                          tmp_path, suffix):
    workdir, _ = trained_workdir
    out = tmp_path / f"s{suffix}"
    result = run_patched("tfvidgen.sample", DISK_FULL_ON_PARTIAL,
                         [f"--workdir={workdir}", "--num_videos=2", f"--output={out}"])
    assert_one_error_line(result, "sample", f"{out}: no space left on device")
    assert not os.listdir(tmp_path)                           # no .partial, no half output


@needs_mount
def test_disk_full_while_writing_is_one_line_and_leaves_nothing(trained_workdir, tmp_path):
    """A 4 KB tmpfs: GIF and PNG fail in Python's write, MP4 inside FFmpeg (PyAV raises)."""
    workdir, _ = trained_workdir
    mount = tmp_path / "full"
    for suffix, count in ((".gif", 64), (".png", 64), (".mp4", 256)):
        result = run_on_tmpfs(mount, "size=4k", sample_cmd(
            f"--workdir={workdir}", f"--num_videos={count}", f"--output={mount / ('s' + suffix)}"))
        assert_one_error_line(result, "sample", f"{mount / ('s' + suffix)}: no space left on device")
        assert tmpfs_contents(result) == []


@pytest.fixture(scope="module")
def exported_workdir(trained_run, tmp_path_factory):
    from tfvidgen import export, train_lib
    workdir, _ = trained_run             # read only
    model, _, step = train_lib.build_for_inference(str(workdir))
    metadata = {"config": json.loads((workdir / "config.json").read_text()), "step": step}
    return export.export_model(model, metadata, str(tmp_path_factory.mktemp("exp") / "g3an"))


def test_export_requests_above_its_max_batch_are_split(exported_workdir):
    import tensorflow as tf

    from tfvidgen.exported import ExportedGenerator
    gen = ExportedGenerator(exported_workdir)
    assert gen.max_batch == 256
    whole = gen.generate(gen.sample_inputs(5, 11)).numpy()
    gen.max_batch = 2                                          # 5 videos -> calls of 2, 2, 1
    latents = gen.sample_inputs(5, 11)
    assert latents["z_appearance"].shape[0] == 5
    np.testing.assert_array_equal(gen.generate(latents).numpy(), whole)
    # evaluate calls generate inside a tf.function (eval/protocol.py): static shapes split too
    traced = tf.function(lambda z: gen.generate(z))
    np.testing.assert_allclose(traced({k: v.numpy() for k, v in latents.items()}).numpy(), whole,
                               atol=1e-6)               # x / 127.5 - 1 fused in the graph


def test_sample_cli_from_an_export_writes_more_videos_than_its_max_batch(exported_workdir,
                                                                         tmp_path):
    out = tmp_path / "many.png"
    result = run(sample_cmd(f"--saved_model={exported_workdir}", "--num_videos=300",
                            f"--output={out}"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "wrote 300 videos" in result.stdout
    assert iio.imread(out).shape[0] == 300 * 17 - 1               # one row of frames per video


# ---- direction control and variable length (InMoDeGAN) ------------------------------------------
def test_parse_directions_off_only_scale_drive_and_rank():
    from tfvidgen import control
    c = control.parse_directions(["off:1,2", "scale:3:2.5", "scale:3:2", "drive:0:0,1"], 6)
    np.testing.assert_array_equal(c.scale, [1, 0, 0, 5, 1, 1])
    assert c.drive == {0: [0.0, 1.0]} and c.rank_samples == 0 and c.changes_videos
    only = control.parse_directions(["only:4", "only:1", "rank"], 6)
    np.testing.assert_array_equal(only.scale, [0, 1, 0, 0, 1, 0])
    assert only.rank_samples == 100
    assert not control.parse_directions(["rank:5"], 6).changes_videos
    phi = control.parse_directions(["phi:1,4:20", "phi:0"], 6)
    assert phi.phi_directions == (1, 4, 0) and phi.phi_samples == 20 and not phi.changes_videos
    for bad, message in (("off:6", "direction 6 outside \\[0, 6\\)"), ("off", "expected"),
                         ("scale:1:inf", "not finite"), ("rank:1", "at least 2")):
        with pytest.raises(ValueError, match=message):
            control.parse_directions([bad], 6)


def test_drive_sets_the_cumulative_component_along_the_trajectory():
    from tfvidgen import control
    alpha = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    c = control.parse_directions(["drive:1:0.5,-1,2", "off:2"], 3)
    out = control.apply_control(alpha, c)
    np.testing.assert_allclose(np.cumsum(out[:, :, 1], axis=1), [[0.5, -1, 2, 2, 2]] * 2,
                               atol=1e-6)                  # held at the last position
    np.testing.assert_array_equal(out[:, :, 0], alpha[:, :, 0])
    np.testing.assert_array_equal(out[:, :, 2], 0.0)


def test_controlled_generation_matches_the_generator_and_ranks_by_variance():
    import tensorflow as tf

    from tests.helpers import tiny_config, tiny_model
    from tfvidgen import control
    model = tiny_model(tiny_config("inmodegan"))
    from tfvidgen import models
    assert models.capabilities("inmodegan").steer and not models.capabilities("g3an").steer
    latents = model.sample_inputs(2, 1)
    plain = model.generate(latents).numpy()
    np.testing.assert_allclose(control.generate(model, latents, None).numpy(), plain,
                               rtol=1e-5, atol=1e-6)
    c = control.parse_directions(["off:3", "scale:5:2"], 8)
    steered = model.generate(dict(latents, direction_scale=tf.constant(
        np.tile(c.scale, (2, 1))))).numpy()
    np.testing.assert_allclose(control.generate(model, latents, c).numpy(), steered,
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(steered, plain)
    stats = control.direction_statistics(model, model.sample_inputs(6, 0))
    assert sorted(stats["order"]) == list(range(8))
    assert np.all(np.diff(stats["variance"][stats["order"]]) <= 0)


def test_delta_phi_of_all_directions_off_removes_all_flow():
    """Every direction off: w_t = w_0 and the noise is per video, so the frames are identical,
    the flow is zero and Delta phi is minus the original videos' phi."""
    from tests.helpers import tiny_config, tiny_model
    from tfvidgen import control
    model = tiny_model(tiny_config("inmodegan"))
    latents = model.sample_inputs(3, 2)
    everything_off = control.parse_directions(["off:" + ",".join(map(str, range(8)))], 8)
    frames = control.generate(model, latents, everything_off).numpy()
    np.testing.assert_allclose(frames, np.repeat(frames[:, :1], 4, axis=1), atol=1e-6)
    original = control._flows(control.generate(model, latents, None).numpy())
    radius = float(np.sqrt((original ** 2).sum(-1)).max())
    base = control.flow_quantification(original, radius)
    assert base["Phi"] > 0
    deltas = control.delta_phi(model, latents, {"all": everything_off,
                                                "one": control.parse_directions(["off:0"], 8)})
    np.testing.assert_allclose(deltas["all"]["delta_phi"], -base["phi"], atol=1e-6)
    np.testing.assert_allclose(deltas["all"]["delta_Phi"], -base["Phi"], atol=1e-6)
    assert np.all(np.isfinite(deltas["one"]["delta_phi"]))


@pytest.fixture(scope="module")
def inmodegan_workdir(tmp_path_factory):
    from tests.helpers import TINY_PARAMS, subprocess_env, train_cmd
    workdir = tmp_path_factory.mktemp("inmodegan") / "w"
    params = [f"--model_param={k}={v}" for k, v in TINY_PARAMS["inmodegan"].items()]
    flags = [f for f in train_cmd(workdir) if not f.startswith(("--model", "--workdir"))]
    result = subprocess.run([*flags, "--model=inmodegan", *params, f"--workdir={workdir}",
                             "--train_steps=1", "--checkpoint_every=1", "--sample_every=100"],
                            cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_sample_cli_directions_and_longer_videos(inmodegan_workdir, tmp_path):
    out = tmp_path / "long.gif"
    result = run(sample_cmd(f"--workdir={inmodegan_workdir}", "--num_videos=2",
                            "--num_frames=9", "--directions=off:0", "--directions=drive:2:0,3",
                            "--directions=rank:4", "--directions=phi:0,1:2", f"--output={out}"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "wrote 2 videos of 9 frames" in result.stdout
    assert "directions by variance of alpha over 4 samples" in result.stdout
    lines = result.stdout.splitlines()
    table = lines.index("rank  direction      mean   variance")
    ranked = [int(line.split()[1]) for line in lines[table + 1:table + 9]]
    assert sorted(ranked) == list(range(8))                     # 8 directions, each once
    phi = lines.index("direction   dphi_0   dphi_1   dphi_2   dphi_3     dPhi")
    rows = [line.split() for line in lines[phi + 1:phi + 3]]
    assert [r[0] for r in rows] == ["0", "1"] and all(len(r) == 6 for r in rows)
    assert all(np.isfinite(float(v)) for r in rows for v in r[1:])
    assert iio.imread(out, index=None).shape[0] == 9


def test_directions_and_num_frames_on_a_model_without_them_are_errors(trained_workdir, tmp_path):
    workdir, _ = trained_workdir
    result = run(sample_cmd(f"--workdir={workdir}", "--directions=off:0",
                            f"--output={tmp_path / 's.gif'}"))
    assert_one_error_line(result, "sample", "--directions: g3an has no motion dictionary")
    result = run(sample_cmd(f"--workdir={workdir}", "--num_frames=8",
                            f"--output={tmp_path / 's.gif'}"))
    assert_one_error_line(result, "sample", "--num_frames=8: g3an generates a fixed number")
    assert not os.listdir(tmp_path)


def _loaded(key):
    from tests.helpers import tiny_config, tiny_model
    from tfvidgen import models
    cfg = tiny_config(key)
    return sources.Loaded(sources.Source(workdir="w"), tiny_model(cfg), cfg, 0,
                          models.capabilities(key))


def test_image_is_given_to_image_to_video_models_and_refused_by_others(tmp_path):
    picture = np.zeros((40, 30, 3), np.uint8)
    picture[:, :15] = 255                                   # left half white
    iio.imwrite(tmp_path / "a.png", picture)
    loaded = _loaded("dual_mtgan")
    images = sampling.given_images(loaded, str(tmp_path / "a.png"), 3)
    assert images.shape == (3, 16, 16, 3)
    np.testing.assert_array_equal(images[0], images[2])
    assert images[0, :, 0].min() > 0.9 and images[0, :, -1].max() < -0.9   # centre crop kept sides
    model = loaded.generator
    inputs = sources.seeded_inputs(model, 3, 0, images=images)
    (name,) = [k for k, role in model.input_roles().items() if role == "image"]
    np.testing.assert_array_equal(inputs[name].numpy(), images)
    videos = model.generate(inputs).numpy()
    assert videos.shape[:2] == (3, 4)
    # without --image: the synthetic first frames of the same seeds
    default = sources.seeded_inputs(model, 3, 5)[name].numpy()
    np.testing.assert_array_equal(default, sources.first_frames(5, 3, 16))
    assert not np.allclose(default[0], default[1])
    assert sampling.given_images(loaded, None, 3) is None
    with pytest.raises(ValueError, match="--image: g3an generates from latents alone"):
        sampling.given_images(_loaded("g3an"), str(tmp_path / "a.png"), 3)


# ---- other lengths and image-to-video, from a workdir and from an export --------------------------
VARIABLE_LENGTH = ("inmodegan", "mvt_tsa", "twostreamvan", "dual_mtgan")


@pytest.fixture(scope="module")
def variable_length_sources(tmp_path_factory):
    """{key: (workdir, export)} of each variable_length model, trained 1 step (tiny)."""
    from tests.helpers import tiny_config
    from tfvidgen import export, train_lib, workdir as workdir_lib
    out = {}
    for key in VARIABLE_LENGTH:
        root = tmp_path_factory.mktemp(key)
        cfg = tiny_config(key, workdir=str(root / "w")).replace(train={"train_steps": 1})
        train_lib.run(cfg)
        model, _, step = workdir_lib.load_for_inference(str(root / "w"))
        metadata = {"config": json.loads((root / "w" / "config.json").read_text()), "step": step}
        out[key] = (str(root / "w"), export.export_model(model, metadata, str(root / "exp")))
    return out


@pytest.mark.parametrize("key", VARIABLE_LENGTH)
def test_num_frames_from_a_workdir_and_from_its_export_give_the_same_videos(
        variable_length_sources, key):
    from tfvidgen import models
    assert models.capabilities(key).variable_length
    workdir, exported = variable_length_sources[key]
    videos = {}
    for name, source in (("workdir", sources.Source(workdir=workdir)),
                         ("export", sources.Source(saved_model=exported))):
        loaded = sources.load(source)
        assert loaded.capabilities.variable_length
        videos[name] = sources.seeded_videos(loaded, 2, 7, num_frames=6).numpy()
        trained = sources.seeded_videos(loaded, 2, 7).numpy()
        assert trained.shape == (2, 4, 16, 16, 3)
    assert videos["workdir"].shape == videos["export"].shape == (2, 6, 16, 16, 3)
    assert not np.allclose(videos["workdir"][0], videos["workdir"][1])    # seeds 7, 8 differ
    # the export serves uint8: one level apart at most
    assert np.abs(viz.to_uint8(videos["workdir"]).astype(int)
                  - viz.to_uint8(videos["export"])).max() <= 1


def test_sample_cli_num_frames_and_image_from_an_image_to_video_export(variable_length_sources,
                                                                       tmp_path):
    _, exported = variable_length_sources["dual_mtgan"]
    out = tmp_path / "first_frames.png"                 # default: synthetic first frames
    result = run(sample_cmd(f"--saved_model={exported}", "--num_videos=2", "--seed=3",
                            "--num_frames=6", f"--output={out}"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "wrote 2 videos of 6 frames at 16x16" in result.stdout
    grid = iio.imread(out)
    assert grid.shape == (2 * 17 - 1, 6 * 17 - 1, 3)
    first = viz.to_uint8(sources.first_frames(3, 2, 16))
    assert np.abs(grid[:16, :16].astype(int) - first[0]).mean() < 40   # frame 0 ~ the image
    picture = np.zeros((24, 24, 3), np.uint8)
    picture[:, :12] = 255
    iio.imwrite(tmp_path / "half.png", picture)
    out = tmp_path / "image.png"
    result = run(sample_cmd(f"--saved_model={exported}", "--num_videos=2",
                            f"--image={tmp_path / 'half.png'}", f"--output={out}"))
    assert result.returncode == 0, result.stderr[-2000:]
    grid = iio.imread(out)
    assert grid.shape == (2 * 17 - 1, 4 * 17 - 1, 3)
    assert not np.array_equal(grid[:16, :16], iio.imread(tmp_path / "first_frames.png")[:16, :16])


def test_num_frames_on_a_fixed_length_export_is_one_error(exported_workdir, tmp_path):
    result = run(sample_cmd(f"--saved_model={exported_workdir}", "--num_frames=8",
                            f"--output={tmp_path / 's.gif'}"))
    assert_one_error_line(result, "sample", "--num_frames=8: g3an generates a fixed number of "
                                            "frames (4)")
    assert not os.listdir(tmp_path)
