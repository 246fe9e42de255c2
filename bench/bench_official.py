"""Official EWAS training step (ported to CPU) vs this package's training step: same model, batch, threads, data.

What is timed is one PGD-AT step with EWAS after layer4.0 of a CIFAR ResNet-18: a PGD-k attack with the weights
frozen, then CE + lam * CE(auxiliary classifier) on the adversarial batch, backward and an SGD update
(lr 0.1, momentum 0.9, weight decay 2e-4; lam 0.01; eps 8/255, step 2/255, k = --steps).

The official side is a minimal CPU port, written for this benchmark, of https://github.com/ieslab-ynu/EWAS
(commit a51f473, the only code there; it targets torch 1.6 + CUDA):
  * `OfficialBlock`   <- models/resnet.py `BasicBlock` (conv-BN-ReLU, conv-BN, `out += shortcut(x)` in place, ReLU).
  * `OfficialUMask`   <- models/mask.py `UMask`: `aux_linear` = Linear(C*H*W, K) on the flattened activation; the
                         mask is the weight row of the given label, or of the argmax of the aux logits when no label is
                         given; returns (x * mask, aux logits).
  * `OfficialResNetRAS` <- models/resnet.py `ResNet_RAS`: no input normalisation, layer4 a ModuleList, UMask after
                         layer4[0], `F.avg_pool2d(out, 4)`, returns (aux logits, logits).
  * `official_attack` <- attack_generator.py `AttackPGD.forward`: numpy uniform start in the eps-ball (always, it has
                         no switch), clamp to [0, 1]; each step: forward with the TRUE labels (true-label mask),
                         loss = CE(out) + lam * CE(aux), `torch.autograd.grad` w.r.t. x, signed step, projection, clamp;
                         at the end one more forward WITHOUT labels (predicted-label mask) whose logits the training
                         loop discards (`output_adv, _ = attacker(...)`).
  * `official_step`   <- AT_with_loss.py `train()` loop body: `model.eval(); model.requires_grad_(False)`, attack,
                         `model.requires_grad_(True); model.train()`, `optimizer.zero_grad()`, forward of the
                         adversarial batch with the TRUE labels, CE + lam * CE(aux), backward, `optimizer.step()`,
                         `loss.item()`.
Deviations of the port (none changes the arithmetic of the default NCHW run):
  * `.cuda()` calls dropped (CPU); the `nn.DataParallel` wrapper dropped (on CPU it only calls the module);
    cudnn flags irrelevant on CPU.
  * channel counts scaled by --width (the official code is width 1.0 only: 64-128-256-512, UMask shape (512, 4, 4));
    width 1.0 is exactly the official model.
  * `x.view(N, -1)` / `out.view(N, -1)` written as `reshape` (identical for contiguous NCHW tensors, no copy; needed for
    the channels_last variant, where `view` would fail).
  * eps / step default to 8/255 and 2/255 as the package's; AT_with_loss.py's own defaults are 0.031 / 0.007 and
    the official loader uses batch 128 (the arithmetic per step does not depend on these values).
  * modules are registered in the order conv1, bn1, layer1-3, layer4[0], mask, layer4[1], linear (the official
    registers mask last) so that the state dict lines up with the package's for copying weights; order does not
    change the computation.
  * `rand_init=False` exists only for the equivalence check (AttackPGD always starts at random).
  * the `official_cl` variant (optional, not in the official code) converts model and batch to channels_last and
    the random start to the batch's layout.

The package side uses the public API only: `create_model('resnet18', width=W, num_classes=10)`,
`add_ewas(model, 'layer4.0', num_classes=10, input_size=(3, 32, 32), lam=0.01)`, then per step
`loss = pgd_loss(model, x, y, eps, alpha, steps)` in train mode, `opt.zero_grad(); loss.backward(); opt.step()`,
`loss.item()`; variant `package_cl` with `model.to(memory_format=torch.channels_last)` and a channels_last batch;
`package_default` in the memory format `fit` uses by default (`TrainConfig().channels_last`), batch norm folded into the
convolutions for the attack's passes as `pgd_loss` does by default (`fold_bn`); `package_nofold` is `package_default`
with `fold_bn=False` (batch norm apart, as before 2026-12-04); `package_compiled` is
`package_cl` with the model wrapped in `torch.compile` (default inductor backend; its compile time is in its warm-up line).
Computational differences from the official step: the package model begins with a `Normalize` layer (CIFAR-10
mean/std; the official model takes raw [0, 1] pixels), its random start uses torch's RNG (official: numpy), and it
does not run the official attack's final forward pass (10 attack passes + 1 training pass, vs the same + 1 forward).

Timing: every variant has its own model (all from the same initial weights) and optimizer and trains on the same
seeded batch; after --warmup untimed steps each, rounds run in ABBA order (A B C D, D C B A, ...), each measurement
the median wall time (and CPU time of this process) of --k steps; per variant the median over --rounds rounds.
Ratios official / package > 1 mean the package is faster; also given as the median of the per-round ratios.

Equivalence check (before timing): the package model's `Normalize` is set to the identity (its mean/std buffers to
0/1) and its weights are copied into the port; then (a) eval-mode logits without labels, (b) one training step each
with the random start off (same arithmetic expected: losses and updated weights equal up to float rounding),
(c) one step each with their random starts (different RNGs: losses of the same magnitude expected).

    python bench/bench_official.py --quick                    # width 0.25, batch 32, ~2 min with 1 thread
    python bench/bench_official.py --width 1.0 --batch 32 --rounds 2 --k 1
    python bench/bench_official.py --variants official,official_nofinal,package   # how much the extra forward costs
    TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) python bench/bench_official.py --quick --variants official,package_cl,package_compiled
"""
import argparse, contextlib, copy, os, platform, statistics, subprocess, time
import ewas_nb
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
from ewas_nb.models import create_model
from ewas_nb.core import add_ewas
from ewas_nb.train import TrainConfig, pgd_loss

LAM, LR, MOMENTUM, WD = 0.01, 0.1, 0.9, 2e-4
CL = torch.channels_last


# ---------------------------------------------------------------- official port (see the module docstring)
class OfficialBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        h += self.shortcut(x)
        return F.relu(h)


class OfficialUMask(nn.Module):
    def __init__(self, shape, num_classes):
        super().__init__()
        c, hh, ww = shape
        self.aux_linear = nn.Linear(c * hh * ww, num_classes)

    def forward(self, x, label=None):
        n, c, hh, ww = x.shape
        aux = self.aux_linear(x.reshape(n, -1))
        rows = label if label is not None else aux.max(1)[1]
        return x * self.aux_linear.weight[rows, :].view(-1, c, hh, ww), aux


class OfficialResNetRAS(nn.Module):
    def __init__(self, width=1.0, num_classes=10, blocks=(2, 2, 2, 2)):
        super().__init__()
        ch = [max(1, int(round(c * width))) for c in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(3, ch[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch[0])
        cin, stages = ch[0], []
        for c, n, s in zip(ch, blocks, (1, 2, 2, 2)):
            stage = []
            for st in [s] + [1] * (n - 1):
                stage.append(OfficialBlock(cin, c, st)); cin = c
            stages.append(stage)
        self.layer1, self.layer2, self.layer3 = (nn.Sequential(*b) for b in stages[:3])
        self.layer4_0 = stages[3][0]                       # official: self.layer4 = nn.ModuleList(...)
        self.mask = OfficialUMask((ch[3], 4, 4), num_classes)   # official: UMask(torch.randn((1,512,4,4)), 10)
        self.layer4_rest = nn.ModuleList(stages[3][1:])
        self.linear = nn.Linear(ch[3], num_classes)

    def forward(self, x, label=None):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4_0(self.layer3(self.layer2(self.layer1(out))))
        out, aux = self.mask(out, label)
        for b in self.layer4_rest: out = b(out)
        out = F.avg_pool2d(out, 4)
        return aux, self.linear(out.reshape(out.size(0), -1))


def official_attack(model, inputs, targets, lam, eps, step, steps, rand_init=True, final_forward=True):
    "AttackPGD.forward: true-label mask during the attack; returns (x_adv, logits of a final label-free forward)."
    x = inputs.detach()
    if rand_init:
        noise = torch.from_numpy(np.random.uniform(-eps, eps, x.shape)).float()
        if inputs.is_contiguous(memory_format=CL) and not inputs.is_contiguous(): noise = noise.contiguous(memory_format=CL)
        x = x + noise
    x = torch.clamp(x, 0.0, 1.0)
    for _ in range(steps):
        x.requires_grad_()
        with torch.enable_grad():
            aux, out = model(x, targets)
            loss = F.cross_entropy(out, targets) + lam * F.cross_entropy(aux, targets)
        grad = torch.autograd.grad(loss, [x])[0]
        x = x.detach() + step * torch.sign(grad.detach())
        x = torch.min(torch.max(x, inputs - eps), inputs + eps)
        x = torch.clamp(x, 0.0, 1.0)
    return x, (model(x)[-1] if final_forward else None)


def official_step(model, opt, data, target, eps, step, steps, lam=LAM, rand_init=True, final_forward=True):
    "One iteration of AT_with_loss.py's train(): attack in eval mode with frozen weights, then train-mode CE + lam*CE."
    model.eval(); model.requires_grad_(False)
    x_adv, _ = official_attack(model, data, target, lam, eps, step, steps, rand_init, final_forward)
    model.requires_grad_(True); model.train()
    opt.zero_grad()
    aux, out = model(x_adv, target)
    loss = F.cross_entropy(out, target) + lam * F.cross_entropy(aux, target)
    loss.backward()
    opt.step()
    return loss.item()


# ---------------------------------------------------------------- package side
def package_model(width, num_classes=10):
    m = create_model('resnet18', width=width, num_classes=num_classes)
    return add_ewas(m, 'layer4.0', num_classes=num_classes, input_size=(3, 32, 32), lam=LAM)


def package_step(model, opt, x, y, eps, alpha, steps, **kw):
    model.train()
    loss = pgd_loss(model, x, y, eps=eps, alpha=alpha, steps=steps, **kw)
    opt.zero_grad(); loss.backward(); opt.step()
    return loss.item()


def sgd(model): return torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)


# ---------------------------------------------------------------- weights: package -> port
def _is_norm_buffer(name): return name.rsplit('.', 1)[-1] in ('mean', 'std')   # Normalize's; BN has running_mean/var


def copy_weights(pkg, port):
    "Copy the package model's state into the port, entry by entry in order; returns a line saying what was done."
    src = [(k, v) for k, v in pkg.state_dict().items() if not _is_norm_buffer(k)]
    dst = list(port.state_dict().items())
    n_pkg, n_port = sum(p.numel() for p in pkg.parameters()), sum(p.numel() for p in port.parameters())
    if len(src) != len(dst) or any(a.shape != b.shape for (_, a), (_, b) in zip(src, dst)):
        return False, f"layouts differ ({len(src)} vs {len(dst)} state entries): not copied; parameters {n_pkg} vs {n_port}"
    port.load_state_dict({k: v.clone() for (_, v), (k, _) in zip(src, dst)})
    return True, f"copied {len(dst)} state entries in order (parameters: package {n_pkg}, port {n_port})"


def identity_normalize(pkg):
    "Set the package's input normalisation buffers (mean, std) to 0 and 1; returns their names."
    names = []
    with torch.no_grad():
        for k, b in pkg.named_buffers():
            if _is_norm_buffer(k): b.fill_(0.0 if k.endswith('mean') else 1.0); names.append(k)
    return names


# ---------------------------------------------------------------- environment
def cpu_info():
    name, flags = platform.processor() or '?', set()
    with contextlib.suppress(Exception):
        out = subprocess.run(['lscpu'], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith('Model name:'): name = line.split(':', 1)[1].strip()
            if line.startswith('Flags:'): flags = set(line.split(':', 1)[1].split())
    if not flags:
        with contextlib.suppress(OSError):
            for line in open('/proc/cpuinfo'):
                k, _, v = line.partition(':')
                if k.strip() == 'model name': name = v.strip()
                if k.strip() == 'flags': flags = set(v.split()); break
    want = ('avx2', 'avx512f', 'avx512_bf16', 'avx512_fp16', 'amx_bf16', 'amx_tile')
    return name, [f for f in want if f in flags], [f for f in want if f not in flags]


def load(): return ' '.join(f'{l:.2f}' for l in os.getloadavg())


# ---------------------------------------------------------------- equivalence check
def equivalence(width, x, y, a, seed):
    print(f"\n== equivalence check (width {width}, batch {len(x)}, PGD-{a.steps}) ==")
    torch.manual_seed(seed)
    pkg0 = package_model(width)
    normed = identity_normalize(pkg0)
    port0 = OfficialResNetRAS(width)
    ok, msg = copy_weights(pkg0, port0)
    print(f"package Normalize set to identity for this check ({', '.join(normed) or 'no mean/std buffers found'}); {msg}")
    with torch.no_grad():
        pkg0.eval(); port0.eval()
        lp, lo = pkg0(x), port0(x)[1]
        print(f"(a) eval logits, no labels (predicted-label mask): max |diff| {(lp - lo).abs().max().item():.2e} "
              f"(max |logit| {lp.abs().max().item():.2f})")
    # (b) no random start
    pkg, port = copy.deepcopy(pkg0), copy.deepcopy(port0)
    try:
        l_pkg = package_step(pkg, sgd(pkg), x, y, a.eps, a.alpha, a.steps, random_start=False)
        how = "pgd_loss(random_start=False)"
    except TypeError:
        torch.manual_seed(seed); l_pkg = package_step(pkg, sgd(pkg), x, y, a.eps, a.alpha, a.steps)
        how = "pgd_loss has no random_start switch: package start random"
    l_off = official_step(port, sgd(port), x, y, a.eps, a.alpha, a.steps, rand_init=False)
    print(f"(b) one step, no random start [{how}]: loss official {l_off:.6f}  package {l_pkg:.6f}  "
          f"|diff| {abs(l_off - l_pkg):.2e}")
    if ok:
        src = [v for k, v in pkg.state_dict().items() if not _is_norm_buffer(k)]
        dst = list(port.state_dict().values())
        d = max((s.float() - t.float()).abs().max().item() for s, t in zip(src, dst))
        m = max(s.float().abs().max().item() for s in src)
        print(f"    state after the SGD step (weights, BN stats): max |diff| {d:.2e} (max |entry| {m:.2f})")
    # (c) each with its own random start
    pkg, port = copy.deepcopy(pkg0), copy.deepcopy(port0)
    torch.manual_seed(seed); np.random.seed(seed)
    l_pkg = package_step(pkg, sgd(pkg), x, y, a.eps, a.alpha, a.steps)
    l_off = official_step(port, sgd(port), x, y, a.eps, a.alpha, a.steps)
    print(f"(c) one step, random start (package: torch RNG, official: numpy RNG): loss official {l_off:.6f}  "
          f"package {l_pkg:.6f}  ratio {l_off / l_pkg:.4f}")


# ---------------------------------------------------------------- timing
VARIANTS = ('official', 'package', 'package_cl', 'package_default', 'package_nofold', 'official_cl', 'official_nofinal', 'package_compiled')


def make_variant(name, pkg0, port0, x, y):
    "(step closure) for variant `name`: a fresh copy of the shared initial weights and its own SGD."
    cl = name.endswith(('_cl', '_compiled')) or (name in ('package_default', 'package_nofold') and TrainConfig().channels_last)   # as `fit` runs by default
    xs = x.contiguous(memory_format=CL) if cl else x
    if name.startswith('official'):
        m = copy.deepcopy(port0)
        if cl: m = m.to(memory_format=CL)
        o, fin = sgd(m), name != 'official_nofinal'
        return lambda a: official_step(m, o, xs, y, a.eps, a.alpha, a.steps, final_forward=fin)
    m = copy.deepcopy(pkg0)
    if cl: m = m.to(memory_format=CL)
    o = sgd(m)
    if name == 'package_compiled': m = torch.compile(m)   # the optimiser holds the same parameters
    fold = name != 'package_nofold'
    return lambda a: package_step(m, o, xs, y, a.eps, a.alpha, a.steps, fold_bn=fold)


def timing(x, y, a, seed):
    names = a.variants
    torch.manual_seed(seed)
    pkg0 = package_model(a.width)
    port0 = OfficialResNetRAS(a.width)
    ok, msg = copy_weights(pkg0, port0)
    print(f"\n== timing: variants {', '.join(names)}; initial weights: {msg} ==")
    steps = {n: make_variant(n, pkg0, port0, x, y) for n in names}
    np.random.seed(seed)
    t0 = time.perf_counter()
    for n in names:
        t = time.perf_counter()
        for _ in range(a.warmup): steps[n](a)
        print(f"warm-up {n}: {a.warmup} step(s), {time.perf_counter() - t:.1f} s" + (" (includes torch.compile)" if n == 'package_compiled' else ''))
    print(f"warm-up: {a.warmup} step(s) per variant, {time.perf_counter() - t0:.1f} s")
    wall, cpu, loss = {n: [] for n in names}, {n: [] for n in names}, {n: None for n in names}
    for r in range(a.rounds):
        order = names if r % 2 == 0 else names[::-1]
        line = []
        for n in order:
            w, c = [], []
            for _ in range(a.k):
                t, p = time.perf_counter(), time.process_time()
                loss[n] = steps[n](a)
                w.append(time.perf_counter() - t); c.append(time.process_time() - p)
            wall[n].append(statistics.median(w)); cpu[n].append(statistics.median(c))
            line.append(f"{n} {wall[n][-1]:.3f}s")
        print(f"round {r + 1}/{a.rounds} ({'forward' if r % 2 == 0 else 'reverse'} order): " + ', '.join(line) + f"  (load {load()})", flush=True)
    print(f"\nper variant: median over {a.rounds} rounds of the median of {a.k} step(s); last loss as a sanity check")
    print(f"{'variant':<18}{'wall s/step':>12}{'img/s':>9}{'CPU s/step':>12}{'last loss':>11}")
    med = {n: statistics.median(wall[n]) for n in names}
    medc = {n: statistics.median(cpu[n]) for n in names}
    for n in names:
        print(f"{n:<18}{med[n]:>12.3f}{len(x) / med[n]:>9.1f}{medc[n]:>12.3f}{loss[n]:>11.4f}")
    pairs = [(o, p) for o, p in (('official', 'package_default'), ('official', 'package_nofold'), ('package_nofold', 'package_default'),
                                 ('official', 'package'), ('official', 'package_cl'),
                                 ('official', 'package_compiled'), ('package_cl', 'package_compiled'),
                                 ('official_cl', 'package_cl'), ('official_cl', 'package_default'),
                                 ('official_nofinal', 'package'), ('official', 'official_nofinal'))
             if o in names and p in names]
    print("\nratios (>1: the second is faster)     median-of-medians wall | CPU time | median of per-round wall ratios")
    for o, p in pairs:
        per_round = statistics.median(wo / wp for wo, wp in zip(wall[o], wall[p]))
        print(f"  {o + ' / ' + p:<34} {med[o] / med[p]:>8.3f}         | {medc[o] / medc[p]:.3f}    | {per_round:.3f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='width 0.25 (batch 32, 6 rounds of 3 steps: ~2 min with 1 thread)')
    p.add_argument('--width', type=float, default=None, help='ResNet-18 channel multiplier (default 1.0; quick 0.25)')
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--steps', type=int, default=10, help='PGD steps of the training attack')
    p.add_argument('--eps', type=float, default=8 / 255); p.add_argument('--alpha', type=float, default=2 / 255)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--rounds', type=int, default=None, help='timed rounds, alternating order (default 6)')
    p.add_argument('--k', type=int, default=None, help='steps per measurement, median taken (default 3)')
    p.add_argument('--warmup', type=int, default=1, help='untimed steps per variant before timing')
    p.add_argument('--variants', default='official,package,package_cl,official_cl',
                   help=f"comma-separated, from {', '.join(VARIANTS)}")
    p.add_argument('--skip-check', action='store_true', help='no equivalence check')
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    a.width = a.width if a.width is not None else (0.25 if a.quick else 1.0)
    a.rounds = a.rounds if a.rounds is not None else 6
    a.k = a.k if a.k is not None else 3
    a.variants = [v.strip() for v in a.variants.split(',') if v.strip()]
    bad = [v for v in a.variants if v not in VARIANTS]
    if bad: p.error(f"unknown variant(s) {', '.join(bad)}; choose from {', '.join(VARIANTS)}")
    torch.set_num_threads(a.threads)
    name, has, lacks = cpu_info()
    print(f"CPU: {name}; {os.cpu_count()} logical CPUs; flags present: {' '.join(has) or '-'}; absent: {' '.join(lacks) or '-'}")
    print(f"torch {torch.__version__} (CPU capability {torch.backends.cpu.get_cpu_capability()}), "
          f"numpy {np.__version__}, Python {platform.python_version()}, threads {torch.get_num_threads()}")
    print(f"ewas_nb imported from {os.path.dirname(ewas_nb.__file__)}")
    print(f"ResNet-18 width {a.width} + EWAS after layer4.0 (lam {LAM}), batch {a.batch}, PGD-{a.steps} "
          f"eps {a.eps * 255:.3g}/255 step {a.alpha * 255:.3g}/255, SGD lr {LR} momentum {MOMENTUM} wd {WD}; "
          f"rounds {a.rounds} x k {a.k}, warm-up {a.warmup}; load average {load()}")
    g = torch.Generator().manual_seed(a.seed)
    x = torch.rand(a.batch, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (a.batch,), generator=g)
    t0 = time.perf_counter()
    if not a.skip_check: equivalence(a.width, x, y, a, a.seed)
    timing(x, y, a, a.seed)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; load average {load()}")


if __name__ == '__main__': main()
