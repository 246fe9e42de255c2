"""The oneDNN channels-last crash behind `runs.unsafe_channels_last`, reproduced in plain torch.

The weight gradient of a 1x1 convolution with stride 2 in channels-last layout, on the CPU, with few input channels,
writes outside its buffers: glibc aborts ("corrupted double-linked list", SIGABRT), or the process dies of SIGSEGV or
SIGBUS, some steps later. Found on torch 2.14.1 / oneDNN 3.12 with AVX2 (AMD EPYC), where tiny digits runs of
`ewas-train --size 8 --width 0.0625` died with channels_last (ResNet-18 x 1/16 has 4 channels into layer2's shortcut).

Part 1 runs the five-line reproducer below in its own process for each input-channel count and prints how it ended.
Part 2 checks, in this process, the channels-last gradients of the shapes real models have (>= 8 input channels)
against float64: an out-of-bounds write that does not crash could still corrupt results.
Part 3 compares the crashing counts with the package's rule (`unsafe_channels_last`: 1x1, stride > 1, < 16 inputs).

    python bench/channels_last_crash.py                 # 1-2 minutes (4 with --repeat 2 on a busy machine)
    python bench/channels_last_crash.py --cin 1-16 --size 8,16,32 --repeat 2
"""
import argparse, platform, signal, subprocess, sys
import torch, torch.nn as nn, torch.nn.functional as F
from ewas_nb.runs import unsafe_channels_last

REPRO = """
import sys, torch, torch.nn.functional as F
torch.set_num_threads(1); cin, size = int(sys.argv[1]), int(sys.argv[2]); cl = torch.channels_last
w = torch.randn(2 * cin, cin, 1, 1).contiguous(memory_format=cl).requires_grad_()
for _ in range(300): F.conv2d(torch.rand(128, cin, size, size).contiguous(memory_format=cl), w, stride=2).sum().backward()
"""


def ended(rc: int) -> str:
    if rc == 0: return 'ok'
    return signal.Signals(-rc).name if rc < 0 else f'exit {rc}'


def counts(spec: str) -> list:
    out = []
    for part in spec.split(','):
        a, _, b = part.partition('-')
        out += list(range(int(a), int(b or a) + 1))
    return out


def grad_error(cin: int, size: int, memory_format) -> float:
    "Relative max error of the weight gradient of a 1x1 stride-2 convolution against float64."
    g = torch.Generator().manual_seed(cin * 100 + size)
    x, w = torch.rand(128, cin, size, size, generator=g), torch.randn(2 * cin, cin, 1, 1, generator=g)
    up = torch.randn(128, 2 * cin, (size + 1) // 2, (size + 1) // 2, generator=g)
    wd = w.double().requires_grad_()
    (F.conv2d(x.double(), wd, stride=2) * up.double()).sum().backward()
    wm = w.contiguous(memory_format=memory_format).requires_grad_()
    (F.conv2d(x.contiguous(memory_format=memory_format), wm, stride=2) * up.contiguous(memory_format=memory_format)).sum().backward()
    return ((wm.grad.double() - wd.grad).abs().max() / wd.grad.abs().max()).item()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--cin', default='1-10,12,16', help="input-channel counts to try, e.g. 1-16,32")
    p.add_argument('--size', default='8,16', help="image sizes (square) to try")
    p.add_argument('--repeat', type=int, default=1, help="processes per case (a heap corruption need not show every time)")
    a = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, {platform.processor() or platform.machine()}")
    print("\n== 1. the reproducer in a fresh process per case (300 steps of weight gradient, batch 128) ==")
    crashed = set()
    for cin in counts(a.cin):
        for size in counts(a.size):
            ends = [ended(subprocess.run([sys.executable, '-c', REPRO, str(cin), str(size)], capture_output=True).returncode)
                    for _ in range(a.repeat)]
            if any(e != 'ok' for e in ends): crashed.add(cin)
            print(f"  in_channels {cin:3d}, {size:2d}x{size:<2d}: {', '.join(ends)}", flush=True)
    print("\n== 2. channels-last weight gradients of wider convolutions vs float64 (relative max error) ==")
    for cin, size in [(8, 16), (16, 32), (32, 16), (64, 8), (128, 4)]:
        print(f"  in_channels {cin:3d}, {size:2d}x{size:<2d}: NCHW {grad_error(cin, size, torch.contiguous_format):.1e}, "
              f"channels_last {grad_error(cin, size, torch.channels_last):.1e}")
    print("\n== 3. the package's rule ==")
    flagged = {c for c in counts(a.cin) if unsafe_channels_last(nn.Conv2d(c, 2 * c, 1, stride=2))}
    print(f"  crashed: {sorted(crashed) or 'none'}; unsafe_channels_last flags: {sorted(flagged)}; "
          f"crashed but not flagged: {sorted(crashed - flagged) or 'none'}")
    return 1 if crashed - flagged else 0


if __name__ == '__main__':
    sys.exit(main())
