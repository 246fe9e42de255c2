"""Scaling: time and peak memory of one PGD-AT step of ResNet-18 against batch size and width (CPU or CUDA).

Each configuration runs in a fresh Python subprocess (so memory peaks do not carry over) that builds the model and
runs one `fit`-style step: `ewas_nb.train.pgd_loss` (L-inf PGD, eps 8/255, step 2/255) + backward + `SGD.step`.
A forward pre-hook on the model splits the step at the training forward (the attack runs in eval mode, the training
forward in train mode), giving the seconds of one attack pass (fwd + input-grad bwd) and of the training part
(fwd + full bwd + SGD update). Cheap configurations (width^2 * batch <= --full-max) are timed on a real PGD-10 step
after a PGD-1 warm-up step; the others on a single cold PGD-1 step, and their PGD-10 time is extrapolated as
10 x (attack pass) + (training part) -- the table marks which. Peak memory does not depend on the number of attack
steps (each attack pass frees its graph before the next), so PGD-1 gives the PGD-10 peak.
Peak memory: CPU: ru_maxrss of the subprocess (includes Python + torch + ewas_nb's imports, ~0.85 GiB here; `base` =
the peak before any step, after model and batch are built; `step` = peak - base); CUDA: torch.cuda.max_memory_allocated.
The rows run one after another, so background load can differ between rows: the CPU-second columns (process_time of
the subprocess; with 1 thread, independent of other processes' load) are the ones to compare across rows.

    python bench/bench_scale.py [--widths 0.125,0.25,0.5,1.0] [--batches 32,64,128,256] [--threads 1] [--ewas]
    python bench/bench_scale.py --full-max 1000     # on CUDA: real PGD-10 steps for every row (each row is cheap)
"""
import argparse, json, os, resource, subprocess, sys, time


def worker(a):
    import torch
    from ewas_nb.runs import default_device
    from ewas_nb.baselines import build_model
    from ewas_nb.train import pgd_loss
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device) if a.device else default_device()
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == 'cuda' else (lambda: None)
    torch.manual_seed(0)
    model = build_model('resnet18', 'ewas' if a.ewas else 'none', width=a.width).to(dev).train()
    x, y = torch.rand(a.batch, 3, 32, 32, device=dev), torch.randint(0, 10, (a.batch,), device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=2e-4)
    marks = []
    model.register_forward_pre_hook(lambda m, i: marks.append((time.perf_counter(), time.process_time(), m.training)))

    def step(k):
        loss = pgd_loss(model, x, y, eps=8 / 255, alpha=2 / 255, steps=k)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); sync()

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB); before any step
    if a.warmup: step(1)  # same batch, so its peak equals the timed step's peak
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats(dev)
    marks.clear(); sync(); t0, c0 = time.perf_counter(), time.process_time()
    if dev.type == 'cuda':  # the hook's timestamps need the GPU caught up at the split
        model.register_forward_pre_hook(lambda m, i: sync() if m.training else None, prepend=True)
    step(a.steps)
    t1, c1 = time.perf_counter(), time.process_time()
    split, csplit = next((t, c) for t, c, training in marks if training)
    attack, train = (split - t0) / a.steps, t1 - split
    cattack, ctrain = (csplit - c0) / a.steps, c1 - csplit
    peak = (torch.cuda.max_memory_allocated(dev) / 2 ** 20 if dev.type == 'cuda'
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(dict(width=a.width, batch=a.batch, steps=a.steps, warm=a.warmup, step_s=t1 - t0,
                          attack_s=attack, train_s=train, pgd10_s=10 * attack + train,
                          attack_cpu_s=cattack, train_cpu_s=ctrain, pgd10_cpu_s=10 * cattack + ctrain,
                          params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                          base_mib=0.0 if dev.type == 'cuda' else base, peak_mib=peak, device=str(dev))))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--widths', default='0.125,0.25,0.5,1.0')
    p.add_argument('--batches', default='32,64,128,256')
    p.add_argument('--full-max', type=float, default=8.0, help="measure a real PGD-10 step when width^2*batch <= this")
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--ewas', action='store_true', help="ResNet-18 with EWAS after layer4.0")
    p.add_argument('--device', default=None)
    p.add_argument('--json', default=None, help="also write the rows to this JSON file")
    # worker mode (one configuration, called by the parent)
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--width', type=float, help=argparse.SUPPRESS); p.add_argument('--batch', type=int, help=argparse.SUPPRESS)
    p.add_argument('--steps', type=int, help=argparse.SUPPRESS); p.add_argument('--warmup', action='store_true', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker: return worker(a)
    widths, batches = [float(w) for w in a.widths.split(',')], [int(b) for b in a.batches.split(',')]
    print(f"ResNet-18{' + EWAS' if a.ewas else ''}, one PGD-AT step (eps 8/255, step 2/255), threads {a.threads}, "
          f"load average {' '.join(f'{l:.1f}' for l in os.getloadavg())}; one fresh subprocess per row"
          + ''.join(f"; {k}={os.environ[k]}" for k in ('MALLOC_MMAP_MAX_', 'MALLOC_TRIM_THRESHOLD_', 'LD_PRELOAD')
                    if k in os.environ))
    hdr = (f"{'width':>6} {'batch':>5} {'params':>7} {'timed':>10} {'attack pass':>11} {'train part':>10} "
           f"{'PGD-10 step':>14} {'img/s':>7} {'CPU-s':>7} {'img/CPU-s':>9} {'peak MiB':>9} {'base MiB':>9} {'step MiB':>9}")
    print(hdr); print('-' * len(hdr))
    rows, t0 = [], time.perf_counter()
    for w in widths:
        for b in batches:
            full = w * w * b <= a.full_max
            cmd = [sys.executable, os.path.abspath(__file__), '--worker', '--width', str(w), '--batch', str(b),
                   '--steps', '10' if full else '1', '--threads', str(a.threads)]
            cmd += ['--warmup'] if full else []
            cmd += ['--ewas'] if a.ewas else []
            cmd += ['--device', a.device] if a.device else []
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                print(f"{w:6g} {b:5d}  failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-1:]}"); continue
            d = json.loads(r.stdout.strip().splitlines()[-1]); rows.append(d)
            timed = 'PGD-10' if full else 'PGD-1 cold'
            est = f"{d['pgd10_s']:.2f} s" + ('' if full else ' (est)')
            print(f"{w:6g} {b:5d} {d['params_m']:6.2f}M {timed:>10} {d['attack_s']:10.3f}s {d['train_s']:9.3f}s "
                  f"{est:>14} {b / d['pgd10_s']:7.1f} {d['pgd10_cpu_s']:7.2f} {b / d['pgd10_cpu_s']:9.1f} "
                  f"{d['peak_mib']:9.0f} {d['base_mib']:9.0f} "
                  f"{d['peak_mib'] - d['base_mib']:9.0f}", flush=True)
    print(f"attack pass = fwd + input-grad bwd (per PGD step); train part = fwd + bwd + SGD update; "
          f"PGD-10 step = measured, or 10 x attack pass + train part (est); img/s from the PGD-10 step; CPU-s = the "
          f"same PGD-10 step in CPU seconds of the subprocess (process_time: with 1 thread, independent of the load "
          f"from other processes), img/CPU-s from it. "
          f"step MiB = peak - base (memory the step itself added). total {time.perf_counter() - t0:.0f} s")
    if a.json:
        with open(a.json, 'w') as f: json.dump(rows, f, indent=1)


if __name__ == '__main__': main()
