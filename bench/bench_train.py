"""Training throughput: images/s and achieved GFLOP/s of one PGD-10 adversarial-training step, against the matmul rate.

One step is exactly what `ewas_nb.train.fit` does per batch: `pgd_loss` (10 L-inf PGD steps on CE + aux loss with the
weights frozen, then CE + aux loss on the adversarial batch) under `train._autocast`, backward, `SGD.step`.

FLOPs are counted with `torch.utils.flop_counter.FlopCounterMode` on real passes at batch 8, scaled to the batch
(exact: every op the counter counts -- conv, mm, addmm -- is linear in the batch):
  * one attack pass = forward + backward for the input gradient only (`runs.eval_mode`: weights need no grad, so the counter
    sees no weight-gradient convolutions),
  * one training pass = forward + full backward,
  * one PGD-k step = k attack passes + 1 training pass (the SGD update and element-wise ops are not counted).
Achieved GFLOP/s = counted FLOPs per step / measured step time. The fp32 matmul rate (torch.mm of NxN, N=2048 on CPU,
8192 on CUDA) is measured in the same run, before and after each timed step. On CPU both are also given per CPU-second
of this process (time.process_time): with 1 thread that figure does not depend on how much of the CPU other processes
take, while the wall-clock figures do.

On CPU the fp32 step is timed three ways (`--malloc both`, the default): with glibc's allocator untouched, after
`train.tune_cpu_allocator()` (as `fit` runs on CPU), and that plus channels_last.

Then the same step under the precision/layout options of `fit`: channels_last, bfloat16 autocast (`--bf16`) and, on
CUDA, float16 autocast + GradScaler (`--amp`), all timed interleaved at `--cmp-batch` (CPU default 4:
without bf16 hardware (avx512_bf16 / AMX) bf16 is an order of magnitude slower than fp32), with the bf16 (and fp16)
matmul rate.
`--robust` adds a short fp32-vs-bf16 training run on digits and compares PGD-20 accuracy (slow on CPUs without bf16).

    python bench/bench_train.py [--width 1.0] [--batch 128] [--ewas] [--threads 1] [--reps 1] [--cmp-batch 4] [--malloc both]
    python bench/bench_train.py --width 0.25            # quicker
    python bench/bench_train.py --robust --skip-speed   # only the fp32 vs bf16 robustness check
"""
import argparse, copy, contextlib, os, platform, statistics, time
import torch, torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from ewas_nb.core import use_labels
from ewas_nb.runs import default_device, eval_mode, tune_cpu_allocator
from ewas_nb.baselines import build_model
from ewas_nb.attacks import paper_ce_loss
from ewas_nb.train import TrainConfig, _autocast, pgd_loss, standard_loss

EPS, ALPHA = 8 / 255, 2 / 255
ENV_SHOWN = ('MALLOC_MMAP_MAX_', 'MALLOC_TRIM_THRESHOLD_', 'LD_PRELOAD', 'OMP_NUM_THREADS')  # settings that change speed


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)


def cpu_info():
    "(model name, bf16-related flags present) from /proc/cpuinfo; empty on other systems."
    name, flags = platform.processor() or '?', set()
    with contextlib.suppress(OSError):
        for line in open('/proc/cpuinfo'):
            k, _, v = line.partition(':')
            if k.strip() == 'model name': name = v.strip()
            if k.strip() == 'flags': flags = set(v.split())
    return name, sorted(flags & {'avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile', 'avx512_fp16'})


def peak_rss_mib():
    "Peak resident memory of this process so far (Linux: ru_maxrss in KiB)."
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def clock():
    "(wall seconds, CPU seconds of this process: all its threads)."
    return time.perf_counter(), time.process_time()


def matmul_rate(dev, dtype, n, min_time=1.0):
    "(wall, CPU-time) GFLOP/s of an n x n @ n x n torch.mm loop lasting >= `min_time` s (after one warm-up call)."
    a, b = torch.randn(n, n, device=dev).to(dtype), torch.randn(n, n, device=dev).to(dtype)
    torch.mm(a, b); sync(dev)
    reps, (w0, c0) = 0, clock()
    while True:
        torch.mm(a, b); reps += 1
        if reps % 4 == 0 or dev.type == 'cpu':
            sync(dev)
            if time.perf_counter() - w0 >= min_time: break
    sync(dev)
    w1, c1 = clock()
    return 2 * n ** 3 * reps / (w1 - w0) / 1e9, 2 * n ** 3 * reps / max(c1 - c0, 1e-9) / 1e9


def count_flops(model, x, y):
    "(attack pass FLOPs, training pass FLOPs) counted by FlopCounterMode on real passes at this batch size."
    with use_labels(model, y, attack=True), eval_mode(model):
        xa = x.clone().requires_grad_(True)
        # .backward() rather than autograd.grad (which FlopCounterMode's module tracker rejects): with the weights
        # frozen it computes the same input gradient and nothing else
        with FlopCounterMode(display=False) as fc: paper_ce_loss(model, xa, y)[0].backward()
    attack = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc: standard_loss(model, x, y).backward()
    model.zero_grad(set_to_none=True)
    return attack, fc.get_total_flops()


class Variant:
    "A model copy + optimizer + precision/layout settings; `step()` runs one `fit`-style PGD-AT step."
    def __init__(self, base, x, y, dev, steps, channels_last=False, amp=False, bf16=False):
        self.model = copy.deepcopy(base)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        self.x, self.y, self.dev, self.steps, self.amp, self.bf16 = x, y, dev, steps, amp, bf16
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, weight_decay=2e-4)
        self.scaler = torch.amp.GradScaler('cuda') if amp else None
        self.model.train()

    def step(self, steps=None):
        "(wall, CPU) seconds of one PGD-`steps` adversarial-training step (attack + loss + backward + SGD update)."
        sync(self.dev); w0, c0 = clock()
        with _autocast(self.dev, TrainConfig(amp=self.amp, bf16=self.bf16, device=str(self.dev))):
            loss = pgd_loss(self.model, self.x, self.y, eps=EPS, alpha=ALPHA, steps=self.steps if steps is None else steps)
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is not None: self.scaler.scale(loss).backward(); self.scaler.step(self.opt); self.scaler.update()
        else: loss.backward(); self.opt.step()
        sync(self.dev); w1, c1 = clock()
        return w1 - w0, c1 - c0


def med(pairs, i): return statistics.median(p[i] for p in pairs)


def speed(a, dev):
    torch.manual_seed(0)
    cpu = dev.type == 'cpu'
    base = build_model('resnet18', 'ewas' if a.ewas else 'none', width=a.width).to(dev)
    x, y = torch.rand(a.batch, 3, 32, 32, device=dev), torch.randint(0, 10, (a.batch,), device=dev)
    mm_n = a.mm_n or (8192 if dev.type == 'cuda' else 2048)
    print(f"== fp32 PGD-{a.steps} training step: ResNet-18 width {a.width}{' + EWAS' if a.ewas else ''}, batch {a.batch}, "
          f"{a.reps} timed step(s), interleaved with {mm_n}x{mm_n} fp32 matmul loops")
    t0 = time.perf_counter()
    v = Variant(base, x, y, dev, a.steps)
    nc = min(a.batch, 8)  # every op the counter counts (conv, mm, addmm) is linear in the batch: count small, scale
    f_att, f_tr = (f * a.batch // nc for f in count_flops(v.model, x[:nc], y[:nc]))
    per_step = a.steps * f_att + f_tr
    print(f"FLOPs (FlopCounterMode on real passes at batch {nc}, x{a.batch // nc} -- exact, counted ops are linear in the "
          f"batch): attack pass (fwd + input-grad bwd, weights frozen) {f_att / 1e9:.1f} GFLOP, "
          f"training pass (fwd + full bwd) {f_tr / 1e9:.1f} GFLOP")
    print(f"  -> PGD-{a.steps} step = {a.steps} x {f_att / 1e9:.1f} + {f_tr / 1e9:.1f} = {per_step / 1e9:.1f} GFLOP "
          f"({per_step / a.batch / 1e9:.2f} GFLOP/image; SGD update and element-wise ops not counted)")
    if a.warmup or dev.type == 'cuda': v.step(steps=0)  # CUDA: lazy init, cuDNN algorithm choice
    # CPU: first with glibc's allocator untouched (mallopt cannot restore its dynamic mmap threshold afterwards), then
    # as `fit` trains on CPU (`tune_cpu_allocator`), then that plus channels_last; on CUDA only the plain fp32 step
    tuned = cpu and a.malloc != 'default'
    runs = [('fp32, glibc malloc defaults', False, False)] if cpu and a.malloc == 'both' else []   # (label, tune, channels_last)
    runs += [('fp32' + (', as fit runs it (tune_cpu_allocator)' if tuned else ''), tuned, False)]
    if cpu and a.malloc == 'both': runs += [('fp32 channels_last, as fit runs it', True, True)]
    for label, tune, cl in runs:
        if tune: print(f"-- tune_cpu_allocator() -> {tune_cpu_allocator()}")
        var = v
        if cl: var = Variant(base, x, y, dev, a.steps, channels_last=True); var.step(steps=0)
        mms, ts = [matmul_rate(dev, torch.float32, mm_n, 2.0)], []
        for _ in range(a.reps):  # matmul / step / matmul / ...: load hits both alike
            ts.append(var.step()); mms.append(matmul_rate(dev, torch.float32, mm_n, 2.0))
        tw, tc = med(ts, 0), med(ts, 1)
        mw, mc = statistics.mean(m[0] for m in mms), statistics.mean(m[1] for m in mms)
        gw, gc = per_step / tw / 1e9, per_step / tc / 1e9
        print(f"{label}: step {tw:.2f} s wall (median of {len(ts)}: {', '.join(f'{s[0]:.2f}' for s in ts)})  ->  "
              f"{a.batch / tw:.2f} images/s;  achieved {gw:.1f} GFLOP/s; fp32 matmul {mw:.1f} GFLOP/s "
              f"(runs {', '.join(f'{m[0]:.1f}' for m in mms)})  ->  ratio achieved/matmul {gw / mw:.2f}  (target >= 0.8)")
        if cpu:
            print(f"  per CPU-second of this process (load-independent with 1 thread): step {tc:.2f} CPU-s "
                  f"({a.batch / tc:.2f} images per CPU-s), achieved {gc:.1f} GFLOP/CPU-s; matmul {mc:.1f} GFLOP/CPU-s  ->  "
                  f"ratio {gc / mc:.2f}  (target >= 0.8); peak RSS {peak_rss_mib():.0f} MiB")
        print(f"  [{time.perf_counter() - t0:.0f} s]")

    if a.cmp_batch == 0: return
    cb = a.cmp_batch or (4 if cpu else a.batch)
    xc, yc = x[:cb], y[:cb]
    if len(xc) < cb: xc, yc = torch.rand(cb, 3, 32, 32, device=dev), torch.randint(0, 10, (cb,), device=dev)
    vs = {'fp32': dict(), 'fp32 channels_last': dict(channels_last=True)}
    low = {'bf16 autocast': dict(bf16=True)}
    if dev.type == 'cuda': low = {'fp16 AMP (GradScaler)': dict(amp=True), **low}
    for k, kw in low.items(): vs[k] = kw; vs[k + ' channels_last'] = dict(channels_last=True, **kw)
    print(f"\n== precision / memory layout: PGD-{a.steps} step at batch {cb}, variants interleaved, {a.cmp_reps} timed "
          f"round(s) after one training pass each as warm-up")
    t0 = time.perf_counter()
    vs = {k: Variant(base, xc, yc, dev, a.steps, **kw) for k, kw in vs.items()}
    for v in vs.values(): v.step(steps=0)
    times = {k: [] for k in vs}
    for _ in range(a.cmp_reps):
        for k, v in vs.items(): times[k].append(v.step())
    rw, rc = med(times['fp32'], 0), med(times['fp32'], 1)
    for k, ts in times.items():
        w, c = med(ts, 0), med(ts, 1)
        print(f"  {k:30s} {w:8.2f} s/step {cb / w:8.2f} images/s {per_step * cb / a.batch / w / 1e9:7.1f} GFLOP/s  "
              f"speed-up over fp32 {rw / w:5.2f}x" + (f" (CPU time: {rc / c:5.2f}x)" if cpu else ''))
    n_low = a.mm_n_low or (mm_n if dev.type == 'cuda' else 512)
    rates = {'fp32': matmul_rate(dev, torch.float32, n_low), 'bf16': matmul_rate(dev, torch.bfloat16, n_low)}
    if dev.type == 'cuda': rates['fp16'] = matmul_rate(dev, torch.float16, n_low)
    i = 1 if cpu else 0
    print(f"  matmul {n_low}x{n_low}{' (per CPU-s)' if cpu else ''}: " + ', '.join(f"{k} {r[i]:.1f} GFLOP/s" for k, r in rates.items())
          + ''.join(f", {k}/fp32 {r[i] / rates['fp32'][i]:.3f}x" for k, r in rates.items() if k != 'fp32')
          + f"   [{time.perf_counter() - t0:.0f} s]")


def robust(a, dev):
    "fp32 vs bf16-autocast PGD-AT on digits (16x16), both evaluated in fp32 with PGD-20; prints the change."
    from torch.utils.data import TensorDataset
    from ewas_nb.data import load_digits_tensors
    from ewas_nb.train import fit
    from ewas_nb.attacks import pgd_accuracy, accuracy
    from ewas_nb.runs import seed_everything
    xtr, ytr = load_digits_tensors(train=True, size=16, channels=1)
    xte, yte = load_digits_tensors(train=False, size=16, channels=1)
    xtr, xte = xtr.float() / 255, xte.float() / 255
    eps = a.robust_eps / 255
    print(f"\n== robustness fp32 vs bf16: ResNet-18 width 0.125 + EWAS on digits 16x16 ({len(xtr)} train / {len(xte)} test), "
          f"PGD-{a.robust_steps} AT eps {a.robust_eps:g}/255, batch {a.robust_batch}, lr {a.robust_lr:g}, "
          f"{a.robust_epochs} epochs, seed {a.robust_seed} for both; "
          f"PGD-20 (step eps/4) and clean accuracy in fp32")
    res = {}
    for name, bf16 in (('fp32', False), ('bf16', True)):
        seed_everything(a.robust_seed)
        m = build_model('resnet18', 'ewas', width=0.125, in_chans=1, input_size=(1, 16, 16))
        w0, c0 = clock()
        fit(m, TensorDataset(xtr, ytr), None, method='pgd', epochs=a.robust_epochs, batch=a.robust_batch,
            lr=a.robust_lr, eps=eps, alpha=eps / 4, steps=a.robust_steps, val_steps=0, seed=a.robust_seed, device=str(dev),
            bf16=bf16, progress=False)
        w1, c1 = clock()
        tt = (w1 - w0, c1 - c0)
        m.float()
        res[name] = (accuracy(m, xte, yte), pgd_accuracy(m, xte, yte, eps=eps, alpha=eps / 4, steps=20, seed=0), tt)
        # (one seed: differences of a few points are within seed-to-seed noise; repeat with --robust-seed)
        print(f"  {name}: clean {100 * res[name][0]:.1f}%, PGD-20 {100 * res[name][1]:.1f}%  (training {tt[0]:.0f} s wall, {tt[1]:.0f} CPU-s)")
    print(f"  change bf16 - fp32: clean {100 * (res['bf16'][0] - res['fp32'][0]):+.1f} pts, "
          f"PGD-20 {100 * (res['bf16'][1] - res['fp32'][1]):+.1f} pts; training time bf16/fp32 x{res['bf16'][2][0] / res['fp32'][2][0]:.2f} wall, "
          f"x{res['bf16'][2][1] / res['fp32'][2][1]:.2f} CPU time")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--width', type=float, default=1.0, help="ResNet-18 channel multiplier (0.25: quicker)")
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--steps', type=int, default=10, help="PGD steps of the training attack")
    p.add_argument('--ewas', action='store_true', help="ResNet-18 with EWAS after layer4.0 (default: without)")
    p.add_argument('--reps', type=int, default=None, help="timed fp32 steps (median; default 1 on CPU, 5 on CUDA)")
    p.add_argument('--warmup', action='store_true', help="one untimed training pass at full batch before timing")
    p.add_argument('--cmp-batch', type=int, default=None, help="batch of the precision comparison (CPU default 4, "
                   "CUDA default --batch; 0 skips it)")
    p.add_argument('--cmp-reps', type=int, default=None, help="interleaved timed rounds of the precision comparison "
                   "(default 1 on CPU, 3 on CUDA)")
    p.add_argument('--mm-n', type=int, default=None, help="fp32 matmul size (default 2048 CPU, 8192 CUDA)")
    p.add_argument('--mm-n-low', type=int, default=None, help="matmul size for the bf16/fp16 rates (default 512 CPU)")
    p.add_argument('--threads', type=int, default=1, help="torch.set_num_threads (CPU)")
    p.add_argument('--malloc', choices=('both', 'tuned', 'default'), default='both', help="CPU fp32 step with glibc's "
                   "allocator defaults, then tuned as `fit` does (+ channels_last) ('both'), or only one of them")
    p.add_argument('--device', default=None, help="default: CUDA if available, else CPU")
    p.add_argument('--skip-speed', action='store_true', help="skip the speed measurements")
    p.add_argument('--robust', action='store_true', help="also train fp32 vs bf16 on digits and compare PGD-20 accuracy")
    p.add_argument('--robust-epochs', type=int, default=3)
    p.add_argument('--robust-batch', type=int, default=32)
    p.add_argument('--robust-lr', type=float, default=0.05)
    p.add_argument('--robust-seed', type=int, default=0)
    p.add_argument('--robust-steps', type=int, default=10, help="PGD steps while training the digits models")
    p.add_argument('--robust-eps', type=float, default=24, help="eps in /255 units (digits)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device) if a.device else default_device()
    a.reps = a.reps or (5 if dev.type == 'cuda' else 1)
    a.cmp_reps = a.cmp_reps or (3 if dev.type == 'cuda' else 1)
    name, flags = cpu_info()
    t0 = time.perf_counter()
    print(f"torch {torch.__version__}, device {dev}"
          + (f" ({torch.cuda.get_device_name(dev)}; cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, "
             f"matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32})" if dev.type == 'cuda' else '')
          + f"; CPU {name}, {os.cpu_count()} logical CPUs, flags {' '.join(flags) or '-'}, "
          f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}; threads {torch.get_num_threads()}; "
          f"load average {' '.join(f'{l:.1f}' for l in os.getloadavg())}"
          + ''.join(f"; {k}={os.environ[k]}" for k in ENV_SHOWN if k in os.environ))
    if not a.skip_speed: speed(a, dev)
    if a.robust: robust(a, dev)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == '__main__': main()
