"""EWAS overhead: forward+backward time of ResNet-18 with EWAS over the same model without it (target <= 1.03).

Both models share their weights (EWAS is added to a deep copy) and run interleaved on the same batch in ABBA order
(base, EWAS, EWAS, base, ...), so that neither always runs first or second, and the median of `--reps` timed
iterations is compared, both in wall-clock time and in CPU time of this process (`time.process_time`; on CPU with
one thread it does not depend on how much of the machine other processes take), so background load affects both alike.
Usage: python bench/bench_overhead.py [--width 1.0] [--batch 128] [--reps 7] [--threads N]"""
import argparse, copy, os, statistics, time
import torch, torch.nn.functional as F
from ewas_nb.core import add_ewas, use_labels, aux_loss
from ewas_nb.runs import default_device
from ewas_nb.models import create_model

def step(model, x, y, with_aux):
    "One training forward+backward (true-label mask and auxiliary loss when EWAS is present)."
    with use_labels(model, y):
        loss = F.cross_entropy(model(x), y)
        if with_aux: loss = loss + aux_loss(model, y)
    loss.backward()

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--width', type=float, default=1.0); p.add_argument('--batch', type=int, default=128)
    p.add_argument('--reps', type=int, default=7); p.add_argument('--threads', type=int, default=None)
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = default_device()
    torch.manual_seed(0)
    base = create_model('resnet18', width=a.width).to(dev)
    ewas = add_ewas(copy.deepcopy(base), 'layer4.0', input_size=base.input_size)
    x, y = torch.rand(a.batch, 3, 32, 32, device=dev), torch.randint(0, 10, (a.batch,), device=dev)
    times = {'base': [], 'ewas': []}; cpu_times = {'base': [], 'ewas': []}
    pair = (('base', base, False), ('ewas', ewas, True))
    for i in range(a.reps + 1):                      # first round is warm-up
        for name, m, aux in (pair if i % 2 == 0 else pair[::-1]):   # ABBA: alternate which model runs first
            m.zero_grad(set_to_none=True)
            if dev.type == 'cuda': torch.cuda.synchronize()
            t, c = time.perf_counter(), time.process_time(); step(m, x, y, aux)
            if dev.type == 'cuda': torch.cuda.synchronize()
            if i: times[name].append(time.perf_counter() - t); cpu_times[name].append(time.process_time() - c)
    tb, te = statistics.median(times['base']), statistics.median(times['ewas'])
    cb, ce = statistics.median(cpu_times['base']), statistics.median(cpu_times['ewas'])
    print(f"device {dev}, threads {torch.get_num_threads()}, ResNet-18 width {a.width}, batch {a.batch}, {a.reps} reps "
          f"(median, ABBA order), load average {' '.join(f'{l:.1f}' for l in os.getloadavg())}")
    print(f"without EWAS: {tb*1e3:8.1f} ms/step  ({a.batch/tb:7.1f} img/s)   {cb*1e3:8.1f} CPU-ms/step")
    print(f"with EWAS:    {te*1e3:8.1f} ms/step  ({a.batch/te:7.1f} img/s)   {ce*1e3:8.1f} CPU-ms/step")
    print(f"overhead ratio (with/without): wall {te/tb:.3f}, CPU time {ce/cb:.3f}  (target <= 1.03)")

if __name__ == '__main__': main()
