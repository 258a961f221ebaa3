"""Studies: arms x seeds trained, evaluated and tabulated the same way (tools/study.py runs one).

A study file (JSON; unknown keys are errors) declares the arms and what they share:

    {
      "name": "g3an_width",
      "description": "Does a wider G3AN learn synthetic_actions faster?",
      "flagfile": "configs/quickstart.cfg",      # default of every arm (launch from the repo root)
      "flags": ["--log_every=100"],              # given to every arm, before the arm's own
      "seeds": [0, 1, 2],                        # default of every arm
      "train_steps": 1000,                       # the step budget (an arm may override it)
      "eval_every": 250,                         # training-time FD/IS (default: budget / 4)
      "eval_samples": 128,                       # videos per training-time evaluation
      "evaluate": {"num_samples": 256, "repeats": 3, "classifier_steps": 400,
                   "metrics": ["is", "fd", "h_y", "h_y_given_v"], "seed": 0,
                   "flags": ["--best_of=5"]},         # evaluate's flags (any other in "flags")
      "sample_videos": 8,                        # videos in each arm's sample strip
      "arms": [
        {"name": "base"},
        {"name": "wide", "model_params": {"base_channels": 32}, "flags": ["--g_lr=1e-4"]},
        {"name": "inmodegan", "flagfile": "configs/inmodegan_quickstart.cfg", "seeds": [0],
         "train_steps": 500}
      ]
    }

(JSON has no comments: the ones above are for this page.) Only "arms" (each with a "name") is
required. An arm is a `python -m tfvidgen.train` command line: --flagfile, the study's flags, the
arm's flags and --model_param=NAME=VALUE of its model_params; the study sets --seed,
--train_steps, --workdir and the --eval_* flags itself (an arm may not).

Each (arm, seed) trains in its own workdir, <out>/runs/<arm>/seed<seed> (its commands' output
in study.log there), with --eval_every: each run has its learning curve (eval_curve.jsonl) and
its best-FD checkpoint (best/). Every run then gets `python -m tfvidgen.evaluate` on its FINAL
checkpoint (the step budget's result; best/ holds the best one, evaluable by hand), all with one
pinned protocol and one evaluation classifier per dataset configuration, cached in
<out>/eval_cache and shared with the training-time evaluations. Each arm gets a sample strip,
<out>/samples/<arm>.png (`python -m tfvidgen.sample` of its first seed: one row per video).

<out>/results.json and <out>/results.md then hold, per arm, each metric's mean +- std (sample
std, ddof 1) over seeds beside the real-data bound (evaluate's experimental bound: real test
videos) and a trivial baseline, "still real frames" (real test videos with their first frame
held for the whole clip: right appearance, no motion), scored by the same classifier against the
same real statistics; and the arm's learning curve: the mean FD over seeds at a few steps, the
step of its lowest mean FD and whether that was the last one (still improving at the end).

A rerun skips what is finished (an evaluated run at the budget) and continues the rest (training
resumes from its checkpoints), so a study can be run a piece at a time (--arms=a,b); results
cover every arm finished so far. Progress lines carry an ETA from the runs timed so far.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

from tfvidgen import errors

__all__ = ["Arm", "Study", "Job", "load_study", "jobs", "status", "run_study", "collect",
           "markdown", "still_frames_baseline"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: flags the study sets for every run
_RESERVED = ("--seed", "--train_steps", "--workdir", "--eval_every", "--eval_samples",
             "--eval_cache_dir", "--eval_classifier_steps")
_EVALUATE_RESERVED = ("--workdir", "--saved_model", "--classifier_dir", "--classifier_steps",
                      "--num_samples", "--repeats", "--seed", "--metrics")
_EVALUATE_KEYS = {"num_samples", "repeats", "classifier_steps", "metrics", "seed", "flags"}
#: what the study echoes of a child's output (the rest goes to its log file)
_ECHOED = ("step ", "eval step ", "done:", "resumed from", "wrote ")
BASELINE = "still real frames"
REAL = "real data (test)"


@dataclasses.dataclass(frozen=True)
class Arm:
    """One configuration: its train flags and the seeds and step budget it runs."""

    name: str
    flags: tuple[str, ...]
    seeds: tuple[int, ...]
    train_steps: int


@dataclasses.dataclass(frozen=True)
class Study:
    """A parsed study file (see the module docstring)."""

    name: str
    description: str
    arms: tuple[Arm, ...]
    eval_every: int | None              # None: a quarter of each arm's budget
    eval_samples: int
    evaluate: dict
    sample_videos: int

    def eval_every_of(self, arm: Arm) -> int:
        return self.eval_every or max(1, arm.train_steps // 4)

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)


@dataclasses.dataclass(frozen=True)
class Job:
    arm: Arm
    seed: int
    workdir: str


def _fail(source: str, message: str):
    raise ValueError(f"{source}: {message}")


def _keys(source: str, raw: dict, allowed: set, what: str) -> None:
    if not isinstance(raw, dict):
        _fail(source, f"{what} must be a JSON object")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        _fail(source, f"unknown key(s) {', '.join(unknown)} in {what}; valid: "
                      f"{', '.join(sorted(allowed))}")


def _int_list(source: str, value, what: str) -> tuple[int, ...]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, int) and v >= 0 for v in value)):
        _fail(source, f"{what} must be a non-empty list of integers >= 0")
    if len(set(value)) != len(value):
        _fail(source, f"{what} repeats a seed")
    return tuple(value)


def _flag_list(source: str, value, what: str, reserved=_RESERVED) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        _fail(source, f"{what} must be a list of strings")
    for flag in value:
        if not flag.startswith("--"):
            _fail(source, f"{what}: {flag!r} is not a --flag=value")
        if flag.split("=", 1)[0] in reserved:
            _fail(source, f"{what}: {flag.split('=', 1)[0]} is set by the study (use its "
                          f"key: \"seeds\", \"train_steps\", \"eval_every\", "
                          f"\"eval_samples\", \"evaluate\")")
    return value


def load_study(path: str) -> Study:
    """Parses a study file; raises ValueError naming the file and the key to fix."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"--study={path}: not valid JSON ({e})") from None
    except OSError as e:
        raise ValueError(f"--study={path}: {e.strerror}") from None
    source = f"--study={path}"
    _keys(source, raw, {"name", "description", "flagfile", "flags", "seeds", "train_steps",
                        "eval_every", "eval_samples", "evaluate", "sample_videos", "arms"},
          "the study")
    if not isinstance(raw.get("arms"), list) or not raw["arms"]:
        _fail(source, "\"arms\" must be a non-empty list")
    base_flags = _flag_list(source, raw.get("flags", []), "\"flags\"")
    seeds = _int_list(source, raw.get("seeds", [0]), "\"seeds\"")
    budget = raw.get("train_steps", 1000)
    evaluate = raw.get("evaluate", {})
    _keys(source, evaluate, _EVALUATE_KEYS, "\"evaluate\"")
    _flag_list(source, evaluate.get("flags", []), "\"evaluate\" \"flags\"", _EVALUATE_RESERVED)
    numbers = {"train_steps": budget, "eval_samples": raw.get("eval_samples", 128),
               "sample_videos": raw.get("sample_videos", 8),
               **{f"evaluate.{k}": v for k, v in evaluate.items()
                  if k in ("num_samples", "repeats", "classifier_steps")}}
    if raw.get("eval_every") is not None:
        numbers["eval_every"] = raw["eval_every"]
    for key, value in numbers.items():
        if not isinstance(value, int) or value < (2 if "samples" in key else 1):
            _fail(source, f"\"{key}\" must be an integer >= {2 if 'samples' in key else 1}")
    arms, names = [], set()
    for i, arm in enumerate(raw["arms"]):
        what = f"arm {i}"
        _keys(source, arm, {"name", "flagfile", "flags", "model_params", "seeds", "train_steps"},
              what)
        name = arm.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            _fail(source, f"{what} needs a \"name\" of letters, digits, '_', '.', '-'")
        if name in names:
            _fail(source, f"two arms are named {name!r}")
        names.add(name)
        flagfile = arm.get("flagfile", raw.get("flagfile"))
        params = arm.get("model_params", {})
        if not isinstance(params, dict):
            _fail(source, f"arm {name!r}: \"model_params\" must be a JSON object")
        steps = arm.get("train_steps", budget)
        if not isinstance(steps, int) or steps < 1:
            _fail(source, f"arm {name!r}: \"train_steps\" must be an integer >= 1")
        flags = ([f"--flagfile={flagfile}"] if flagfile else []) + base_flags \
            + _flag_list(source, arm.get("flags", []), f"arm {name!r} \"flags\"") \
            + [f"--model_param={k}={_param(v)}" for k, v in params.items()]
        arm_seeds = _int_list(source, arm["seeds"], f"arm {name!r} \"seeds\"") \
            if "seeds" in arm else seeds
        arms.append(Arm(name, tuple(flags), arm_seeds, steps))
    return Study(name=str(raw.get("name", os.path.splitext(os.path.basename(path))[0])),
                 description=str(raw.get("description", "")), arms=tuple(arms),
                 eval_every=raw.get("eval_every"), eval_samples=numbers["eval_samples"],
                 evaluate={"num_samples": 256, "repeats": 3, "classifier_steps": 400, "seed": 0,
                           **evaluate},
                 sample_videos=numbers["sample_videos"])


def _param(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# ---- what to run ------------------------------------------------------------------------------
def jobs(study: Study, out: str, arms=None) -> list[Job]:
    """Every (arm, seed) of `arms` (names; None = all), in study order."""
    unknown = sorted(set(arms or ()) - {a.name for a in study.arms})
    if unknown:
        raise ValueError(f"--arms: no arm named {', '.join(unknown)}; the study has "
                         f"{', '.join(a.name for a in study.arms)}")
    return [Job(arm, seed, os.path.join(out, "runs", arm.name, f"seed{seed}"))
            for arm in study.arms if arms is None or arm.name in arms for seed in arm.seeds]


def _newest_checkpoint(workdir: str) -> int:
    steps = [int(m.group(1)) for path in glob.glob(os.path.join(workdir, "checkpoints",
                                                                "ckpt-*.index"))
             if (m := re.search(r"ckpt-(\d+)\.index$", path))]
    return max(steps, default=0)


def _read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def _metrics_record(study: Study, job: Job) -> dict | None:
    """evaluate's metrics.json of the job's final checkpoint under the study's protocol."""
    record = _read_json(os.path.join(job.workdir, "eval", "metrics.json"))
    if record is None or record.get("step") != job.arm.train_steps:
        return None
    p = record.get("protocol", {})
    want = study.evaluate
    if (p.get("num_samples"), p.get("repeats"), p.get("seed")) != (
            want["num_samples"], want["repeats"], want["seed"]):
        return None
    # Metrics that only some models get may be absent; every other requested one must be there.
    optional = {"label_accuracy", "appearance_preservation", "motion_preservation",
                "label_effect", "s3"}
    if not set(want.get("metrics", ())) - optional <= set(record["results"]):
        return None
    return record


def status(study: Study, job: Job) -> str:
    """"done", "evaluate" (trained to the budget) or "train" (new, or resumes)."""
    if _metrics_record(study, job) is not None:
        return "done"
    return "evaluate" if _newest_checkpoint(job.workdir) >= job.arm.train_steps else "train"


def train_command(study: Study, job: Job, out: str) -> list[str]:
    """The run's `python -m tfvidgen.train`: the arm's flags, then what the study sets."""
    return [sys.executable, "-m", "tfvidgen.train", *job.arm.flags, f"--seed={job.seed}",
            f"--train_steps={job.arm.train_steps}",
            f"--eval_every={study.eval_every_of(job.arm)}",
            f"--eval_samples={study.eval_samples}",
            f"--eval_cache_dir={os.path.join(out, 'eval_cache')}",
            f"--eval_classifier_steps={study.evaluate['classifier_steps']}",
            f"--workdir={job.workdir}"]


def evaluate_command(study: Study, job: Job, classifier_dir: str) -> list[str]:
    e = study.evaluate
    cmd = [sys.executable, "-m", "tfvidgen.evaluate", f"--workdir={job.workdir}",
           f"--classifier_dir={classifier_dir}", f"--classifier_steps={e['classifier_steps']}",
           f"--num_samples={e['num_samples']}", f"--repeats={e['repeats']}", f"--seed={e['seed']}"]
    if "metrics" in e:
        cmd.append(f"--metrics={','.join(e['metrics'])}")
    return cmd + list(e.get("flags", ()))


def sample_command(study: Study, job: Job, output: str) -> list[str]:
    return [sys.executable, "-m", "tfvidgen.sample", f"--workdir={job.workdir}",
            f"--num_videos={study.sample_videos}", f"--output={output}"]


def _sample_path(out: str, arm: Arm) -> str:
    return os.path.join(out, "samples", f"{arm.name}.png")


def _first_job(out: str, arm: Arm) -> Job:
    return Job(arm, arm.seeds[0], os.path.join(out, "runs", arm.name, f"seed{arm.seeds[0]}"))


def _sample_current(study: Study, out: str, arm: Arm) -> bool:
    """The arm's strip exists and is newer than its first seed's evaluation (the checkpoint it
    shows is the evaluated one)."""
    path = _sample_path(out, arm)
    metrics = os.path.join(_first_job(out, arm).workdir, "eval", "metrics.json")
    return (os.path.isfile(path) and _metrics_record(study, _first_job(out, arm)) is not None
            and os.path.getmtime(path) >= os.path.getmtime(metrics))


def _child_env() -> dict:
    """The children import the tfvidgen this process runs."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            "PYTHONPATH": root + (os.pathsep + path if path else "")}


def run_command(cmd: list[str], log_path: str, prefix: str, log) -> tuple[int, list[str]]:
    """Runs `cmd`, appending its output to `log_path` and echoing its progress lines through
    `log` with `prefix`. Returns (exit status, its last lines)."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    tail: list[str] = []
    with open(log_path, "a") as log_file:
        log_file.write(f"$ {' '.join(cmd)}\n")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=_child_env(), bufsize=1)
        for line in proc.stdout:
            log_file.write(line)
            line = line.rstrip("\n")
            tail = (tail + [line])[-20:]
            if line.startswith(_ECHOED):
                log(f"{prefix} {line}")
        return proc.wait(), tail


class _Clock:
    """ETA from the work timed so far: seconds per training step, seconds per evaluation."""

    def __init__(self):
        self.train_seconds = self.train_steps = 0.0
        self.other_seconds = self.other_jobs = 0

    def eta(self, steps_left: int, others_left: int) -> str:
        if not self.train_steps and not self.other_jobs:
            return "ETA after the first run"
        per_step = self.train_seconds / self.train_steps if self.train_steps else 0.0
        per_other = self.other_seconds / self.other_jobs if self.other_jobs else 0.0
        return f"ETA {(steps_left * per_step + others_left * per_other) / 60:.1f} min"


def run_study(study: Study, out: str, arms=None, dry_run: bool = False, log=print,
              run=run_command) -> int:
    """Trains, evaluates and samples what is not finished, then writes the results.

    Returns 0, or 1 when a run failed (the others still ran; its log is named)."""
    todo = jobs(study, out, arms)
    states = {job: status(study, job) for job in todo}
    sample_arms = [arm for arm in study.arms if (arms is None or arm.name in arms)
                   and not _sample_current(study, out, arm)]
    if dry_run:
        for job in todo:
            state, newest = states[job], _newest_checkpoint(job.workdir)
            what = {"done": "done: skipped",
                    "evaluate": f"trained to {job.arm.train_steps}: evaluate",
                    "train": (f"resume at step {newest} -> {job.arm.train_steps}, then evaluate"
                              if newest else f"train 0 -> {job.arm.train_steps}, then evaluate")
                    }[state]
            log(f"{job.arm.name} seed={job.seed}: {what}")
            if state == "train":
                log("  " + " ".join(train_command(study, job, out)))
        for arm in sample_arms:
            log(f"{arm.name}: sample strip -> {_sample_path(out, arm)}")
        return 0
    os.makedirs(out, exist_ok=True)
    clock, failed = _Clock(), []
    pending = [job for job in todo if states[job] != "done"]
    log(f"[study] {study.name}: {len(todo)} run(s), {len(todo) - len(pending)} done, "
        f"{len(pending)} to go; output in {out}")
    for i, job in enumerate(pending):
        steps_left = sum(max(0, j.arm.train_steps - _newest_checkpoint(j.workdir))
                         for j in pending[i:])
        others_left = len(pending) - i + len(sample_arms)
        prefix = f"[{job.arm.name} seed={job.seed}]"
        log(f"[study] {i + 1}/{len(pending)} {job.arm.name} seed={job.seed} | "
            f"{clock.eta(steps_left, others_left)}")
        log_path = os.path.join(job.workdir, "study.log")
        if status(study, job) == "train":
            start, first = time.perf_counter(), _newest_checkpoint(job.workdir)
            code, tail = run(train_command(study, job, out), log_path, prefix, log)
            if code:
                failed.append(_report_failure(job, "train", code, tail, log_path, log))
                continue
            clock.train_seconds += time.perf_counter() - start
            clock.train_steps += max(1, job.arm.train_steps - first)
        best = _read_json(os.path.join(job.workdir, "best", "best.json"))
        if best is None:
            failed.append(_report_failure(job, "evaluate", 2, [
                f"{job.workdir}/best/best.json is missing: the run was not trained with "
                f"--eval_every"], log_path, log))
            continue
        start = time.perf_counter()
        code, tail = run(evaluate_command(study, job, best["classifier_dir"]), log_path, prefix,
                         log)
        if code:
            failed.append(_report_failure(job, "evaluate", code, tail, log_path, log))
            continue
        clock.other_seconds += time.perf_counter() - start
        clock.other_jobs += 1
    for arm in sample_arms:
        first = _first_job(out, arm)
        if status(study, first) != "done":
            continue
        log_path = os.path.join(first.workdir, "study.log")
        code, tail = run(sample_command(study, first, _sample_path(out, arm)), log_path,
                         f"[{arm.name}]", log)
        if code:
            failed.append(_report_failure(first, "sample", code, tail, log_path, log))
    results = collect(study, out, log=log)
    errors.write_text_atomically(os.path.join(out, "results.json"),
                                 json.dumps(results, indent=2, sort_keys=True))
    errors.write_text_atomically(os.path.join(out, "results.md"), markdown(results))
    finished = sum(len(a["seeds"]) for a in results["arms"].values())
    log(f"[study] {finished}/{sum(len(a.seeds) for a in study.arms)} run(s) finished; wrote "
        f"{os.path.join(out, 'results.md')}" + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


def _report_failure(job: Job, stage: str, code: int, tail: list[str], log_path: str, log):
    errors = [line for line in tail if ": error:" in line] or tail[-3:]
    log(f"[study] FAILED {stage} of {job.arm.name} seed={job.seed} (exit {code}): "
        f"{' | '.join(errors)} (log: {log_path})")
    return (job.arm.name, job.seed, stage)


# ---- results ----------------------------------------------------------------------------------
def _mean_std(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def _curve_summary(curves: list[list[dict]]) -> dict:
    """Mean FD over seeds at the steps every seed evaluated; its lowest step; still improving."""
    common = sorted(set.intersection(*({row["step"] for row in c} for c in curves)))
    if not common:
        return {"steps": [], "fd": [], "best_step": None, "improving_at_end": None}
    fd = [statistics.fmean(next(r["fd"] for r in c if r["step"] == s) for c in curves)
          for s in common]
    best = common[min(range(len(fd)), key=fd.__getitem__)]
    return {"steps": common, "fd": fd, "best_step": best, "improving_at_end": best == common[-1]}


def collect(study: Study, out: str, log=print) -> dict:
    """results.json's content: every finished arm's metrics over seeds, its curve, and per
    protocol the real-data bound and the still-frames baseline."""
    results = {"study": study.name, "description": study.description,
               "evaluated": "final checkpoint", "evaluate": study.evaluate,
               "std": "sample standard deviation over seeds (ddof 1)",
               "arms": {}, "protocols": {}, "not_finished": []}
    baselines_path = os.path.join(out, "baselines.json")
    baselines = _read_json(baselines_path) or {}
    for arm in study.arms:
        records, curves, seeds = {}, [], []
        for seed in arm.seeds:
            job = Job(arm, seed, os.path.join(out, "runs", arm.name, f"seed{seed}"))
            record = _metrics_record(study, job)
            if record is None:
                results["not_finished"].append(f"{arm.name} seed={seed}")
                continue
            seeds.append(seed)
            records[seed] = record
            curves.append(_read_curve(job.workdir))
        if not records:
            continue
        first = records[seeds[0]]
        key = first["protocol_key"]
        requested = list(study.evaluate.get("metrics", ()))       # their order, then the rest
        names = sorted((n for n in first["results"]
                        if all(n in r["results"] for r in records.values())),
                       key=lambda n: (requested.index(n) if n in requested else len(requested), n))
        entry = {"seeds": seeds, "missing_seeds": [s for s in arm.seeds if s not in records],
                 "train_steps": arm.train_steps, "protocol_key": key,
                 "metrics": {n: {**_mean_std([records[s]["results"][n]["mean"] for s in seeds]),
                                 "better": first["results"][n]["better"]} for n in names},
                 "per_seed": {str(s): {n: records[s]["results"][n]["mean"] for n in names}
                              for s in seeds},
                 "curve": _curve_summary(curves) if all(curves) else None,
                 "best_per_seed": {str(s): _read_json(os.path.join(
                     out, "runs", arm.name, f"seed{s}", "best", "best.json")) for s in seeds},
                 "sample": (os.path.relpath(_sample_path(out, arm), out)
                            if os.path.isfile(_sample_path(out, arm)) else None)}
        results["arms"][arm.name] = entry
        if key not in results["protocols"]:
            protocol = first["protocol"]
            real = {n: r["experimental_bound"] for n, r in first["results"].items()}
            if key not in baselines:
                workdir = os.path.join(out, "runs", arm.name, f"seed{seeds[0]}")
                log(f"[study] scoring the '{BASELINE}' baseline of protocol {key}")
                baselines[key] = still_frames_baseline(protocol, workdir)
                errors.write_text_atomically(baselines_path,
                                             json.dumps(baselines, indent=2, sort_keys=True))
            c = protocol["classifier"]
            results["protocols"][key] = {
                "data": f"{c['dataset']} {c['resolution']}x{c['resolution']}, "
                        f"{c['num_frames']} frames, stride <= {c['max_stride']}",
                "protocol": protocol, "real_data": real, "baseline": baselines[key],
                "classifier_test_accuracy": first.get("classifier_test_accuracy")}
    return results


def _read_curve(workdir: str) -> list[dict]:
    path = os.path.join(workdir, "eval_curve.jsonl")
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def still_frames_baseline(protocol: dict, workdir: str) -> dict:
    """The trivial baseline of an evaluation protocol (evaluate's metrics.json "protocol"):
    real test videos with their first frame held for the whole clip (right appearance, no
    motion), as many as the protocol's sample set, scored like generated videos: classified by
    the protocol's classifier, FD against the same real statistics (evaluate's cache in
    <workdir>/eval/cache). The videos are the second real set (the one behind the real-data
    bound), so the baseline and the bound compare alike. -> {metric: value}."""
    import numpy as np

    from tfvidgen.eval import classifier as classifier_lib
    from tfvidgen.eval import metrics
    from tfvidgen.eval import protocol as protocol_lib
    clf_protocol = classifier_lib.ClassifierProtocol(**protocol["classifier"])
    p = protocol_lib.EvalProtocol(**{**protocol, "classifier": clf_protocol})
    best = _read_json(os.path.join(workdir, "best", "best.json"))
    clf_dir = best["classifier_dir"] if best else os.path.join(workdir, "eval", "classifier")
    clf, meta = classifier_lib.load(clf_dir)
    if meta["weights_sha256"] != p.classifier_sha256:
        raise ValueError(f"{clf_dir} holds another classifier than the one evaluate used")
    real = protocol_lib.real_statistics(p, clf, os.path.join(workdir, "eval", "cache"))
    offset = int(math.ceil(p.num_samples / 32)) * 32            # real_statistics' set "b"
    videos, labels = [], []
    for batch in classifier_lib.test_split(clf_protocol, 32).skip(offset // 32):
        videos.append(batch["video"].numpy())
        labels.append(batch["label"].numpy())
        if sum(len(v) for v in videos) >= p.num_samples:
            break
    videos = np.concatenate(videos)[:p.num_samples]
    labels = np.concatenate(labels)[:p.num_samples]
    still = np.repeat(videos[:, :1], videos.shape[1], axis=1)   # [N, T, H, W, 3]
    out = classifier_lib.predict(clf, still)
    return {"is": metrics.inception_score(out["action"]),
            "h_y": metrics.marginal_entropy(out["action"]),
            "h_y_given_v": metrics.conditional_entropy(out["action"]),
            "fd": metrics.frechet_distance_from_features(out["features"], real["a_features"]),
            "label_accuracy": float((out["action"].argmax(1) == labels).mean())}


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(results: dict) -> str:
    """results.md: one table per evaluation protocol (dataset configuration)."""
    e = results["evaluate"]
    lines = [f"# Study {results['study']}", ""]
    if results["description"]:
        lines += [results["description"], ""]
    lines += [f"Each run's final checkpoint, scored by `python -m tfvidgen.evaluate` "
              f"({e['num_samples']} videos x {e['repeats']} sets, classifier "
              f"{e['classifier_steps']} steps); mean +- std over seeds (sample std). "
              f"\"{REAL}\" is evaluate's experimental bound; \"{BASELINE}\" is the trivial "
              f"baseline (real test videos, first frame held). The curve is the mean FD over "
              f"seeds during training (--eval_every, a smaller sample: compare its values "
              f"with each other, not with the columns).", ""]
    for key, proto in results["protocols"].items():
        arms = {name: a for name, a in results["arms"].items() if a["protocol_key"] == key}
        names = []
        for a in arms.values():
            names += [n for n in a["metrics"] if n not in names]
        better = {n: next(a["metrics"][n]["better"] for a in arms.values() if n in a["metrics"])
                  for n in names}
        accuracy = proto.get("classifier_test_accuracy")
        lines += [f"## {proto['data']} (protocol {key}, classifier real test accuracy "
                  f"{_fmt(accuracy)})", ""]
        header = ["arm", "seeds", "steps"] + [f"{n} ({better[n]})" for n in names] \
            + ["FD during training (step: FD)", "best step", "improving at end", "samples"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for label, values in ((REAL, proto["real_data"]), (BASELINE, proto["baseline"])):
            lines.append("| " + " | ".join([label, "-", "-"]
                                           + [_fmt(values.get(n)) for n in names]
                                           + ["-", "-", "-", "-"]) + " |")
        for name, a in arms.items():
            seeds = str(len(a["seeds"]))
            if a["missing_seeds"]:
                seeds += f" of {len(a['seeds']) + len(a['missing_seeds'])}"
            cells = [name, seeds, str(a["train_steps"])]
            for n in names:
                m = a["metrics"].get(n)
                if m is None:
                    cells.append("-")
                else:
                    cells.append(f"{m['mean']:.3f} +- {m['std']:.3f}" if m["n"] > 1
                                 else f"{m['mean']:.3f}")
            curve = a["curve"]
            if curve and curve["steps"]:
                shown = _spread(list(zip(curve["steps"], curve["fd"])), 5)
                cells += [", ".join(f"{s}: {v:.2f}" for s, v in shown), str(curve["best_step"]),
                          "yes" if curve["improving_at_end"] else "no"]
            else:
                cells += ["-", "-", "-"]
            cells.append(f"![{name}]({a['sample']})" if a["sample"] else "-")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if results["not_finished"]:
        lines += [f"Not finished yet: {', '.join(results['not_finished'])}.", ""]
    return "\n".join(lines)


def _spread(points: list, k: int) -> list:
    """At most k of `points`, evenly spaced, always the first and the last."""
    if len(points) <= k:
        return points
    index = sorted({round(i * (len(points) - 1) / (k - 1)) for i in range(k)})
    return [points[i] for i in index]
