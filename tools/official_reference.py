r"""One measurement of an official PyTorch code on the CPU, printed as one JSON line: the official
side of tools/official_benchmark.py, which starts it once per measurement with a separate Python
that has torch (CPU build) and numpy only:

  <torch python> tools/official_reference.py --model=g3an_fsa --phase=train \
      --references=DIR --warmup=1 --iters=3 --threads=2 --batch=16
  <torch python> tools/official_reference.py --model=twostreamvan --phase=train --task=pred ...

--model: g3an_fsa / g3an (DIR/g3an-project, F-SA on / off), twostreamvan (DIR/TwoStreamVAN,
Weizmann; --task=recons|pred|video for --phase=train), mvt_tsa (DIR/tsb-gan, MVT-TSA).
--phase: train (one training iteration: the discriminator and generator updates, optimizer steps
included, data in memory) or sample (one batch from the generator under torch.no_grad()).

Printed (stdout, one line; everything else the process prints goes to stderr): times (every
iteration, warm-ups first), median/min/max of the measured ones, peak RSS MiB (getrusage), own
CPU seconds, parameter counts, and the share of the machine's CPU other processes used while it
measured ("other load": a busy machine shows in the report instead of skewing it silently).

The official code is not part of this repository: its modules are imported at run time from the
source trees in DIR, unmodified. What this process adapts in its own memory so that the code runs
on a CPU with current torch (stub modules, a CPU separable convolution, ...) is listed with the
reason in DEVIATIONS, which official_benchmark.py copies into its report. Needs no tfvidgen, no
TensorFlow and no absl: it runs in the torch environment.
"""

import argparse
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import random
import resource
import statistics
import sys
import time
import types

__all__ = ["MODELS", "TREES", "TSVAN_TASKS", "DEVIATIONS", "Meter", "time_calls", "summarize",
           "cpu_snapshot", "peak_rss_mib", "main"]

#: --model -> the source tree under --references it imports
TREES = {"g3an_fsa": "g3an-project", "g3an": "g3an-project", "twostreamvan": "TwoStreamVAN",
         "mvt_tsa": "tsb-gan"}
MODELS = tuple(TREES)
#: TwoStreamVAN's three kinds of joint-training iteration (train.py), timed one per process
TSVAN_TASKS = ("recons", "pred", "video")

# G3AN (CVPR 2020) cfg.py: z_a 128, z_m 10, ch 64 in G and both Ds, g_mode 1p2d, 16 frames 64x64,
# Adam(2e-4, (0.5, 0.999)), BCE with logits.
G3AN = dict(z_a=128, z_m=10, channels=64, mode="1p2d", frames=16, size=64)
# TwoStreamVAN (WACV 2020) bashes/TwoStreamVAN/WeizmannTrain.bash + options.py defaults.
TSVAN = dict(video_len=10, size=64, num_categories=10,
             gen=dict(n_channels=3, motion_dim=64, cont_dim=512, gf_dim=16, latent_dim=512,
                      use_bn=False, ac_kernel=5, no_mask=False, joint=True, kernel_layer=4),
             loss_weights=dict(c_kl_start=7, c_kl_end=7, img_m_kl=7, vid_m_kl_start=2,
                               vid_m_kl_end=20, c_img_dis=10, xp_vs_xtilde=1,
                               pred_scale_feat=100, video_scale_feat=100),
             actions=["bend", "jack", "pjump", "wave1", "wave2", "jump", "run", "side", "skip",
                      "walk"],
             schedule_iter=1)
# MVT / tsb-gan at tfvidgen's configs/mvt_tsa_ucf128.cfg: conv dims 64 (parameters.py), 2 D steps
# per G step and G 5e-5 / D 2e-4 (run_video_gan.sh), Adam betas (0, 0.9), hinge, fold 3, 101
# classes; z_dim 120 (gen_z draws 80 + 20 + 20; ConditionalBatchNorm2d is built for z_dim + 120).
MVT = dict(z_dim=120, g_conv_dim=64, d_conv_dim=64, g_lr=5e-5, d_lr=2e-4, betas=(0.0, 0.9),
           d_steps=2, g_steps=1, fold=3, num_classes=101, frames=16, size=128, image_frames=8)

#: Utility-only imports of the references that a torch + numpy environment lacks; stubbed when
#: missing (they back data loading, logging and image writing, never a measured path).
UTILITY_MODULES = ("torchvision", "tensorboardX", "cv2", "PIL", "pandas", "GPUtil", "h5py",
                   "imageio", "matplotlib", "tqdm", "skvideo", "glob2", "inception_utils",
                   "utils2")

#: What the official side adapts, and why, by source tree ("general": every tree); the report
#: lists the sections of the trees it measured.
DEVIATIONS = {
    "general": """\
General (official side)
- Random tensors replace the datasets (real clips uniform in [-1, 1], labels uniform); data
  loading, logging, checkpointing, image writing, `nn.DataParallel` and `.cuda()` are outside
  every measurement. Each measurement runs in a fresh process (peak RSS includes the Python and
  torch baseline, ~0.3 GiB); torch.set_num_threads(--threads) and OMP/MKL threads = --threads.
- Utility-only modules missing from a torch + numpy environment (torchvision, tensorboardX, cv2,
  PIL, ...) are replaced by inert stub modules in the measuring process; none is reached on a
  measured path. The reference files are imported unmodified from --references.
""",
    "g3an-project": """\
G3AN (wyhsirius/g3an-project)
- Training runs the reference's own `trainer.train()` loop over a list of random batches (its
  tensorboard writer a no-op); an iteration is the time between successive batch fetches.
- F-SA on = the paper / released generator (`Generator()` default); F-SA off = train.py's CLI
  default. cfg.py trains with batch 96; both rows use batch 16.
- Sampling as generate_videos.py: `G.eval()` under `torch.no_grad()`, z ~ N(0, I).
""",
    "TwoStreamVAN": """\
TwoStreamVAN (sunxm2357/TwoStreamVAN)
- Its separable (adaptive) convolution is a CUDA-only extension (built with `torch.utils.ffi`,
  PyTorch 0.4) that cannot run on a CPU: a PyTorch implementation of the same contract as its
  CUDA kernel (`out[b,c,y,x] = sum_ij in[b,c,y+i,x+j] v[b,i,y,x] h[b,j,y,x]`, via `unfold`)
  stands in, with autograd gradients instead of its hand-written backward kernels.
- `ConvLstmCell` builds `nn.Conv2d(padding=(k-1)/2)`, a float under Python 3 that current torch
  rejects: that padding is cast to int after construction.
- It steps one optimizer between two backward passes through one retained graph, which only
  worked before torch 1.5 (optimizers updated `p.data`): the environment is given an `Adam`
  subclass that updates `.data` aliases of the parameters (same arithmetic, the 0.4 semantics).
- train.py trains one of three tasks per iteration (content `recons`, easier motion `pred`,
  harder motion `video`); each is timed in its own process as the reference's
  `optimize_*_parameters()` sequence (encoder, generator and discriminator updates) with the
  equilibrium gate forced open, schedules read at iteration 1 (teacher forcing, start of training).
- Sampling is `Generator.full_test()` (eval mode, video_len + 2 frames, the first two dropped).
""",
    "tsb-gan": """\
MVT-TSA (amunozgarza/tsb-gan)
- Configuration = tfvidgen's configs/mvt_tsa_ucf128.cfg: conv dims 64 in G and D (parameters.py;
  the run script uses 96), 2 D steps per G step, G 5e-5 / D 2e-4, Adam (0, 0.9), hinge, fold 3,
  101 classes, 128x128x16, 8 frames per video for D_Image, z_dim 120 (the run script's; gen_z
  draws 80 + 20 + 20 dims).
- The training iteration is re-stated from `Trainer.train()` (its loop cannot run on a CPU:
  `sample_frames` allocates `torch.cuda.FloatTensor`, `gen_z` calls `torch.normal` on integer
  tensors current torch rejects, the loop is tied to its data loader and GPUtil): the same
  modules, order of forward / backward / step and hinge losses, with one micro-batch per step (no
  gradient accumulation) and instance noise omitted (its default sigma is 0). The latent `CGRU`
  comes from trainer.py; its `GRU.initHidden()` is told not to call `.cuda()`.
- Batch 2 videos (32 frames through G) is the smallest that trains: the GRU's `BatchNorm1d` in
  train mode fails at 1. run_video_gan.sh trains batch 48 as 8 accumulated micro-batches of 6
  (parameters.py: 64); tfvidgen's config one batch of 48.
- Sampling as `inference.Tester`: `G.eval()`, the GRU left in train mode, under `torch.no_grad()`.
""",
}


# ---- stub modules for missing utility imports ------------------------------------------------
class _AnyMeta(type):
    def __getattr__(cls, name):          # class-level access, e.g. Image.BILINEAR
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything


class _Anything(metaclass=_AnyMeta):
    """Accepts any construction, attribute access or call; does nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Anything()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything()


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything


class _StubLoader(importlib.abc.Loader):
    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []             # a package, so that submodules import too
        module.__is_official_benchmark_stub__ = True
        return module

    def exec_module(self, module):
        pass


class _StubFinder(importlib.abc.MetaPathFinder):
    def __init__(self, roots):
        self.roots = set(roots)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.roots:
            return importlib.machinery.ModuleSpec(fullname, _StubLoader(), is_package=True)
        return None


def install_stubs() -> list:
    """Stubs the UTILITY_MODULES this environment cannot import; returns their names."""
    missing = [m for m in UTILITY_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        sys.meta_path.insert(0, _StubFinder(missing))
    return missing


def stubbed_modules() -> list:
    return sorted(name for name, module in list(sys.modules.items())
                  if getattr(module, "__dict__", {}).get("__is_official_benchmark_stub__"))


# ---- timing, CPU load and memory (also used by official_benchmark.py's tfvidgen side) --------
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_NUM_CPUS = os.cpu_count() or 1


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_snapshot() -> tuple:
    """(wall clock, machine busy ticks, this process's ticks over all threads); Linux /proc,
    (wall, None, None) elsewhere."""
    wall = time.perf_counter()
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
        busy = sum(ticks) - ticks[3] - ticks[4]           # less idle and iowait
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        own = int(fields[11]) + int(fields[12])            # utime + stime
    except (OSError, ValueError, IndexError):
        busy = own = None
    return wall, busy, own


class Meter:
    """Interval marks: wall time, own CPU seconds and the share of the machine's CPU used by
    other processes in each interval."""

    def __init__(self):
        self.marks = []

    def mark(self) -> None:
        self.marks.append(cpu_snapshot())

    def intervals(self) -> list:
        out = []
        for (w0, b0, o0), (w1, b1, o1) in zip(self.marks[:-1], self.marks[1:]):
            wall = w1 - w0
            if b0 is None or b1 is None:
                out.append((wall, None, None))
                continue
            foreign = max(0.0, (b1 - b0) - (o1 - o0)) / _CLOCK_TICKS
            out.append((wall, (o1 - o0) / _CLOCK_TICKS,
                        foreign / (wall * _NUM_CPUS) if wall > 0 else None))
        return out


def summarize(meter: Meter, warmup: int) -> dict:
    """times (all, warm-ups first), median/min/max of the measured ones, own CPU seconds
    (median) and other processes' CPU share (mean and max) during the measured ones."""
    intervals = meter.intervals()
    measured = intervals[warmup:]
    walls = [wall for wall, _, _ in measured]
    result = {"times": [wall for wall, _, _ in intervals], "median": statistics.median(walls),
              "min": min(walls), "max": max(walls)}
    own = [o for _, o, _ in measured if o is not None]
    foreign = [f for _, _, f in measured if f is not None]
    if own:
        result["own_cpu_s"] = statistics.median(own)
    if foreign:
        result["other_load"] = sum(foreign) / len(foreign)
        result["other_load_max"] = max(foreign)
    return result


def time_calls(fn, warmup: int, iters: int) -> dict:
    """summarize() of warmup + iters calls of fn."""
    meter = Meter()
    meter.mark()
    for _ in range(warmup + iters):
        fn()
        meter.mark()
    return summarize(meter, warmup)


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---- G3AN -----------------------------------------------------------------------------------
class _TimedBatches:
    """A 'data loader' over prepared batches that marks the meter at each fetch: the reference's
    own loop is timed from one batch to the next."""

    def __init__(self, batches, meter):
        self.batches, self.meter = batches, meter

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            self.meter.mark()
            yield batch


def run_g3an(tree: str, phase: str, batch: int, warmup: int, iters: int, attention: bool) -> dict:
    import torch
    sys.path.insert(0, tree)
    from model.networks import Generator, ImageDiscriminator, VideoDiscriminator

    c = G3AN
    generator = Generator(c["z_a"], c["z_m"], c["channels"], c["mode"], attention)
    video_d, image_d = VideoDiscriminator(c["channels"]), ImageDiscriminator(c["channels"])
    result = {"params": {"G": _count(generator), "D_video": _count(video_d),
                         "D_image": _count(image_d)},
              "config": (f"z_a {c['z_a']}, z_m {c['z_m']}, ch {c['channels']}, g_mode "
                         f"{c['mode']}, F-SA {'on' if attention else 'off'}, {c['frames']} "
                         f"frames {c['size']}x{c['size']}, batch {batch}, Adam(2e-4, (0.5, "
                         f"0.999)), BCE with logits")}
    if phase == "sample":
        generator.eval()

        def sample():
            za = torch.randn(batch, c["z_a"], 1, 1, 1)
            zm = torch.randn(batch, c["z_m"], 1, 1, 1)
            with torch.no_grad():
                videos = generator(za, zm)
            assert videos.shape == (batch, 3, c["frames"], c["size"], c["size"]), videos.shape

        result.update(time_calls(sample, warmup, iters))
        return result

    import trainer as g3an_trainer
    adam = lambda net: torch.optim.Adam(net.parameters(), 2e-4, (0.5, 0.999))  # noqa: E731
    batches = [torch.rand(batch, 3, c["frames"], c["size"], c["size"]) * 2 - 1
               for _ in range(warmup + iters)]
    meter = Meter()
    args = argparse.Namespace(d_za=c["z_a"], d_zm=c["z_m"], print_freq=10 ** 9, max_epoch=1)
    g3an_trainer.train(args, 0, generator, video_d, image_d, adam(generator), adam(video_d),
                       adam(image_d), torch.nn.BCEWithLogitsLoss(),
                       _TimedBatches(batches, meter), _Anything(), torch.device("cpu"))
    meter.mark()
    result.update(summarize(meter, warmup))
    result["note"] = "the reference's trainer.train() loop"
    return result


# ---- TwoStreamVAN ---------------------------------------------------------------------------
def _cpu_separable_convolution_module():
    """CPU stand-in for the reference's CUDA-only SeparableConvolution (same contract as its
    kernel: out[b,c,y,x] = sum_ij in[b,c,y+i,x+j] * v[b,i,y,x] * h[b,j,y,x]; autograd
    gradients)."""
    import torch.nn.functional as F

    def separable_conv(inputs, vertical, horizontal, kernel_size):
        b, c, hp, wp = inputs.shape
        h, w = hp - kernel_size + 1, wp - kernel_size + 1
        assert vertical.shape == (b, kernel_size, h, w) == horizontal.shape
        patches = F.unfold(inputs, kernel_size).view(b, c, kernel_size, kernel_size, h, w)
        kernel = vertical.unsqueeze(2) * horizontal.unsqueeze(1)      # b, k, k, h, w
        return (patches * kernel.unsqueeze(1)).sum(dim=(2, 3))

    class SeparableConvolution:
        apply = staticmethod(separable_conv)

    module = types.ModuleType("separable_convolution.SeparableConvolution")
    module.SeparableConvolution = SeparableConvolution
    module.__is_official_benchmark_stub__ = True
    return module


def _fix_float_padding(network) -> int:
    """ConvLstmCell passes padding=(k-1)/2, a float under Python 3: cast to int."""
    import torch.nn as nn
    fixed = 0
    for m in network.modules():
        if isinstance(m, nn.modules.conv._ConvNd) and any(isinstance(p, float)
                                                          for p in m.padding):
            m.padding = tuple(int(p) for p in m.padding)
            fixed += 1
    return fixed


def _adam_via_data():
    """Adam updating persistent `.data` aliases of the parameters: PyTorch 0.4's optimizer
    semantics, which the reference's retained-graph steps need (see DEVIATIONS)."""
    import torch

    class AdamViaData(torch.optim.Adam):
        def __init__(self, params, *args, **kwargs):
            self._pairs = [(p, p.data) for p in params]
            super().__init__([alias for _, alias in self._pairs], *args, **kwargs)

        def zero_grad(self, set_to_none=True):
            for p, alias in self._pairs:
                p.grad = None
                alias.grad = None

        def step(self, closure=None):
            for p, alias in self._pairs:
                alias.grad = p.grad
            return super().step(closure)

    return AdamViaData


def run_twostreamvan(tree: str, phase: str, task: str | None, batch: int, warmup: int,
                     iters: int) -> dict:
    import numpy as np
    import torch
    sys.path.insert(0, tree)
    sys.modules["separable_convolution.SeparableConvolution"] = (
        _cpu_separable_convolution_module())
    import outer_prod_motion_mask.twostreamvan_environ as environ_module
    from outer_prod_motion_mask.twostreamvan_environ import TwoStreamVAN
    environ_module.optim = types.SimpleNamespace(Adam=_adam_via_data())

    c = TSVAN
    classes, video_len, size = c["num_categories"], c["video_len"], c["size"]
    actors = [f"actor{i}" for i in range(9)]
    unused = "unused-by-official-benchmark"         # dirs only stored (the writer is a stub)
    env = TwoStreamVAN(dict(c["gen"], num_categories=classes), unused, unused, unused, video_len,
                       c["actions"], actors, is_eval=False,
                       dis_args=dict(n_channels=3, num_categories=classes),
                       loss_weights=c["loss_weights"], pretrain_iters=0)
    fixed = _fix_float_padding(env.networks["generator"])
    env.weight_init()
    generator = env.networks["generator"]
    encoders = sum(_count(getattr(generator, k))
                   for k in ("contEnc", "contSampler", "motionEnc", "motionSampler"))
    g = c["gen"]
    result = {"params": {"G": _count(generator), "G_encoders": encoders,
                         "D_image": _count(env.networks["img_discriminator"]),
                         "D_video": _count(env.networks["vid_discriminator"])},
              "config": (f"Weizmann: gf_dim {g['gf_dim']}, content {g['cont_dim']}, motion "
                         f"{g['motion_dim']}, latent {g['latent_dim']}, joint, ac_kernel "
                         f"{g['ac_kernel']}, kernel_layer {g['kernel_layer']}, {classes} "
                         f"classes, {video_len}-frame clips {size}x{size}, batch {batch}, "
                         f"Adam(2e-4, (0.5, 0.999), wd 1e-5) x6, schedules at iteration "
                         f"{c['schedule_iter']}"),
              "float_padding_fixed": fixed}
    if phase == "sample":
        env.eval()

        def sample():
            categories = torch.from_numpy(np.random.randint(0, classes, batch))
            with torch.no_grad():
                video, _ = generator.full_test(categories, video_len + 2)
            video = video[:, 2:]
            assert video.shape == (batch, video_len, 3, size, size), video.shape

        result.update(time_calls(sample, warmup, iters))
        return result

    env.train()
    at = c["schedule_iter"]

    # train.py's three tasks: optimize_*_parameters() with the equilibrium gate forced open
    def recons_step():
        env.reconstruct_forward()
        env.get_recons_losses(env.c_kl.get_value(at))
        env.backward_content_enc(retain=True)
        env.backward_cont_dec()
        env.backward_img_dis()

    def pred_step():
        env.freeze_cont_stream()
        env.predict_forward()
        env.get_pred_losses()
        env.backward_motion_enc(retain=True)
        env.backward_motion_dec()
        env.backward_img_dis()
        env.free_cont_stream()

    def video_step():
        env.freeze_cont_stream()
        env.video_forward(env.schedule_sampler.get_value(at), ae_mode="sample")
        env.get_video_loss(env.motion_kl_weight.get_value(at))
        env.backward_motion_enc(retain=True)
        env.backward_motion_dec()
        env.backward_vid_dis()
        env.free_cont_stream()

    step = {"recons": recons_step, "pred": pred_step, "video": video_step}[task]
    batches = [{"images": torch.rand(batch, 3, video_len, size, size) * 2 - 1,
                "categories": torch.randint(0, classes, (batch,)),
                "actors": torch.randint(0, len(actors), (batch,))}
               for _ in range(warmup + iters)]
    meter = Meter()
    meter.mark()
    for inputs in batches:
        env.set_inputs(inputs)                      # stores the prepared tensors
        step()
        meter.mark()
    result.update(summarize(meter, warmup))
    result["note"] = f"task {task}"
    return result


# ---- MVT-TSA --------------------------------------------------------------------------------
def run_mvt(tree: str, phase: str, batch: int, warmup: int, iters: int) -> dict:
    import torch
    sys.path.insert(0, os.path.join(tree, "video_gan"))
    from models import Discriminator, Discriminator_3D, Generator
    from trainer import CGRU                         # the latent GRU lives in trainer.py

    p = MVT
    frames, size, classes, n_images = p["frames"], p["size"], p["num_classes"], p["image_frames"]
    generator = Generator(p["z_dim"], p["g_conv_dim"], classes, p["fold"])
    image_d = Discriminator(p["d_conv_dim"], classes)
    video_d = Discriminator_3D(p["d_conv_dim"], classes, True, T=frames)
    gru = CGRU(classes, p["z_dim"], frames, batch)
    gru.gru._gpu = False                 # GRU.initHidden() calls .cuda() unless told not to
    result = {"params": {"G": _count(generator), "G_latent_GRU": _count(gru),
                         "D_image": _count(image_d), "D_video": _count(video_d)},
              "config": (f"z_dim {p['z_dim']}, g/d conv dims {p['g_conv_dim']}/"
                         f"{p['d_conv_dim']}, fold {p['fold']}, {classes} classes, {frames} "
                         f"frames {size}x{size}, batch {batch} videos ({batch * frames} frames "
                         f"through G), {p['d_steps']} D steps + {p['g_steps']} G step, Adam(G "
                         f"{p['g_lr']:g} / D {p['d_lr']:g}, betas {p['betas']}), hinge, "
                         f"{n_images} frames per video for D_Image")}

    def gen_z(n):
        # Trainer.gen_z's distribution and layout: [z_M, z_C, z_S]
        return torch.cat((torch.randn(n, 20) * 0.5, torch.randn(n, 80) * 2.0,
                          torch.randn(n, 20)), 1).view(n, p["z_dim"])

    def fake_labels():
        labels = torch.randint(0, classes, (batch, 1))
        return (labels, labels.repeat(1, n_images).view(batch * n_images),
                labels.repeat(1, frames).view(batch * frames))

    def some_frames(videos, labels):
        # Trainer.sample_frames: n_images random frames (with replacement) per video
        index = torch.randint(0, frames, (batch, n_images))
        picked = torch.stack([videos[i, :, index[i]] for i in range(batch)])
        picked = picked.transpose(2, 1).contiguous().view(batch * n_images, 3, size, size)
        return picked, labels.view(batch, 1).repeat(1, n_images).view(batch * n_images)

    def generate(z, frame_labels):
        videos = generator(gru(z), frame_labels).view(batch, frames, 3, size, size)
        return videos.transpose(2, 1)

    if phase == "sample":
        generator.eval()

        def sample():
            _, _, frame_labels = fake_labels()
            with torch.no_grad():
                videos = generate(gen_z(batch), frame_labels)
            assert videos.shape == (batch, 3, frames, size, size), videos.shape

        result.update(time_calls(sample, warmup, iters))
        return result

    for net in (generator, image_d, video_d, gru):
        net.train()
    adam = lambda net, lr: torch.optim.Adam(net.parameters(), lr, list(p["betas"]))  # noqa
    opt_g, opt_gru = adam(generator, p["g_lr"]), adam(gru, p["g_lr"])
    opt_d, opt_d3 = adam(image_d, p["d_lr"]), adam(video_d, p["d_lr"])
    relu = torch.nn.ReLU()

    def zero_all():
        for optimizer in (opt_g, opt_d, opt_d3, opt_gru):
            optimizer.zero_grad()

    def train_iteration():
        # Trainer.train() with batch_size == batch_size_in_gpu, hinge, instance noise sigma 0
        for _ in range(p["d_steps"]):
            zero_all()
            real_videos = torch.rand(batch, 3, frames, size, size) * 2 - 1
            real_labels = torch.randint(0, classes, (batch,))
            real_images, real_image_labels = some_frames(real_videos, real_labels)
            relu(1 - image_d(real_images, real_image_labels)).mean().backward()
            labels, image_labels, frame_labels = fake_labels()
            fake_videos = generate(gen_z(batch), frame_labels)
            fake_images, _ = some_frames(fake_videos, labels)
            relu(1 + image_d(fake_images.detach(), image_labels.squeeze())).mean().backward()
            relu(1 - video_d(real_videos, real_labels)).mean().backward()
            relu(1 + video_d(fake_videos.detach(), labels.squeeze())).mean().backward()
            opt_d.step()
            opt_d3.step()
        for _ in range(p["g_steps"]):
            zero_all()
            labels, image_labels, frame_labels = fake_labels()
            fake_videos = generate(gen_z(batch), frame_labels)
            fake_images, _ = some_frames(fake_videos, labels)
            (-image_d(fake_images, image_labels.squeeze()).mean()).backward(retain_graph=True)
            (-video_d(fake_videos, labels.squeeze()).mean()).backward()
            opt_g.step()
            opt_gru.step()

    result.update(time_calls(train_iteration, warmup, iters))
    result["note"] = "Trainer.train() re-stated (see deviations)"
    return result


# ---- entry point ----------------------------------------------------------------------------
def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, choices=MODELS)
    parser.add_argument("--phase", required=True, choices=("train", "sample"))
    parser.add_argument("--task", choices=TSVAN_TASKS,
                        help="TwoStreamVAN training task (required for its --phase=train)")
    parser.add_argument("--references", required=True,
                        help="directory holding g3an-project/, TwoStreamVAN/, tsb-gan/")
    parser.add_argument("--batch", type=int, required=True, help="videos per batch")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.model == "twostreamvan" and args.phase == "train" and not args.task:
        parser.error("--model=twostreamvan --phase=train needs --task")
    if args.warmup < 0 or args.iters < 1 or args.batch < 1 or args.threads < 1:
        parser.error("--warmup >= 0, --iters >= 1, --batch >= 1, --threads >= 1")
    tree = os.path.join(args.references, TREES[args.model])
    if not os.path.isdir(tree):
        parser.error(f"--references={args.references}: no {TREES[args.model]}/ in it")
    return args


def main(argv=None) -> int:
    args = _parse(argv)
    # stdout carries only the JSON line: whatever the references print goes to stderr
    result_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # the references use generic top-level names (utils, models, trainer): this script's own
    # directory must not shadow them
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]

    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    install_stubs()
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    tree = os.path.abspath(os.path.join(args.references, TREES[args.model]))
    start = time.perf_counter()
    if args.model in ("g3an_fsa", "g3an"):
        result = run_g3an(tree, args.phase, args.batch, args.warmup, args.iters,
                          attention=args.model == "g3an_fsa")
    elif args.model == "twostreamvan":
        result = run_twostreamvan(tree, args.phase, args.task, args.batch, args.warmup,
                                  args.iters)
    else:
        result = run_mvt(tree, args.phase, args.batch, args.warmup, args.iters)
    result.update({"side": "official", "model": args.model, "phase": args.phase,
                   "task": args.task, "batch": args.batch, "warmup": args.warmup,
                   "iters": args.iters, "threads": torch.get_num_threads(),
                   "peak_rss_mib": peak_rss_mib(), "wall_s": time.perf_counter() - start,
                   "torch": torch.__version__, "stubbed_modules": stubbed_modules()})
    result_out.write(json.dumps(result) + "\n")
    result_out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
