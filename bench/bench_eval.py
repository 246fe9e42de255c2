"""PGD-20 evaluation throughput: ewas_nb's `PGD` against `torchattacks.PGD` on the same model and data, and AutoAttack.

Default (CPU, well under 2 minutes): a small CNN adversarially trained on scikit-learn digits (16x16) in a few seconds,
ε = 24/255, n = 360 test images. With --checkpoint, a real model via `train.load_model` and its test set (ε = 8/255).

Three PGD-20 implementations (step ε/4, random start), each timed over the whole slice including the final accuracy
forward pass (best of --repeats interleaved runs after a warm-up):
  * ewas_nb PGD with early stop (its default): an example leaves the batch at its first fooling iterate, so it costs
    less the less robust the model is; it fools at least the examples the last-iterate PGD fools;
  * ewas_nb PGD with early_stop=False: the same algorithm as torchattacks (last iterate), showing per-step overhead
    (ewas_nb freezes the parameters while crafting, so autograd keeps no graph for the weights);
  * torchattacks.PGD.
Then AutoAttack with the reference budgets (APGD-CE, APGD-T, FAB-T at 100 iterations, Square at 5000 queries) on
--aa-n examples: torchattacks is the implementation, so no ratio is given for it.

    python bench/bench_eval.py [--device cuda] [--checkpoint runs/at_ewas/best.pt --n 1000 --batch-size 500]
"""
import argparse, time
import torch, torchattacks
from ewas_nb.attacks import PGD, autoattack
from ewas_nb.runs import default_device, eval_mode, model_device, seeded
from ewas_nb.models import small_cnn
from ewas_nb.train import quick_train
from ewas_nb.core import add_ewas


def sync(dev):
    if torch.device(dev).type == 'cuda': torch.cuda.synchronize(dev)


def run(make, model, x, y, bs, dev):
    "Time one pass of attack + accuracy forward over (x, y); returns (seconds, accuracy)."
    sync(dev); t0, correct = time.perf_counter(), 0
    for i in range(0, len(x), bs):
        xb, yb = x[i:i + bs].to(dev), y[i:i + bs].to(dev)
        with seeded(i):
            adv = make()(xb, yb)
        with torch.no_grad(), eval_mode(model): correct += int((model(adv).argmax(1) == yb).sum())
    sync(dev)
    return time.perf_counter() - t0, correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default=None, help="default: CUDA if available, else CPU")
    ap.add_argument('--checkpoint', default=None, help="evaluate this checkpoint's model on its test set instead of the digits CNN")
    ap.add_argument('--model', default='plain', choices=['plain', 'ewas'], help="digits CNN: plain or with EWAS")
    ap.add_argument('--n', type=int, default=360, help="examples for PGD")
    ap.add_argument('--aa-n', type=int, default=32, help="examples for AutoAttack (0: skip)")
    ap.add_argument('--batch-size', type=int, default=256)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--eps', type=float, default=None, help="default: 24/255 (digits), 8/255 (checkpoint)")
    ap.add_argument('--threads', type=int, default=1, help="CPU threads (torch.set_num_threads)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device) if a.device else default_device()
    t0 = time.perf_counter()
    if a.checkpoint:
        from ewas_nb.baselines import load_model
        from ewas_nb.data import get_dataset, take
        model, cfg = load_model(a.checkpoint, dev)
        dkw = {'size': cfg['size']} if cfg.get('size') else {}
        x, y = take(get_dataset(cfg['dataset'], cfg.get('data_dir'), train=False, download=False, **dkw), a.n, seed=0)
        eps, what = a.eps or 8 / 255, f"checkpoint {a.checkpoint}"
    else:
        from ewas_nb.data import load_digits_tensors
        xtr, ytr = load_digits_tensors(train=True, size=16, channels=1)
        x, y = load_digits_tensors(train=False, size=16, channels=1)
        xtr, x, y = xtr.float() / 255, x[:a.n].float() / 255, y[:a.n]
        eps = a.eps or 24 / 255
        torch.manual_seed(0)
        net = small_cnn() if a.model == 'plain' else add_ewas(small_cnn(), 'block2', input_size=(1, 16, 16))
        model = quick_train(net.to(dev), xtr, ytr, adv_eps=eps)
        what = f"small CNN ({a.model}, FGSM-RS trained on digits in {time.perf_counter() - t0:.1f} s)"
    model.eval()
    n, bs = len(x), a.batch_size
    impls = {
        'ewas_nb PGD (early stop)': lambda: PGD(model, eps=eps, alpha=eps / 4, steps=20),
        'ewas_nb PGD (last iterate)': lambda: PGD(model, eps=eps, alpha=eps / 4, steps=20, early_stop=False),
        f'torchattacks {torchattacks.__version__} PGD': lambda: torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=20),
    }
    print(f"PGD-20 on {what}; device {dev}; n={n}, batch {bs}, eps={eps:.4f}")
    for make in impls.values(): run(make, model, x[:bs], y[:bs], bs, dev)  # warm-up
    times = {name: [] for name in impls}
    for _ in range(a.repeats):  # interleaved, so that a busy machine slows all implementations alike
        for name, make in impls.items(): times[name].append(run(make, model, x, y, bs, dev))
    res = {}
    for name, ts in times.items():
        t, acc = min(ts)
        res[name] = n / t
        print(f"  {name:34s} {n / t:9.1f} examples/s  (accuracy {100 * acc:.1f}%)")
    ta = res[f'torchattacks {torchattacks.__version__} PGD']
    print(f"  ratio ewas_nb / torchattacks: early stop {res['ewas_nb PGD (early stop)'] / ta:.2f}x, "
          f"last iterate {res['ewas_nb PGD (last iterate)'] / ta:.2f}x (target >= 1.0)")
    if a.aa_n:
        xa, ya = x[:a.aa_n], y[:a.aa_n]
        t, acc = run(lambda: autoattack(model, eps=eps, seed=0, num_classes=int(y.max()) + 1), model, xa, ya, bs, dev)
        print(f"AutoAttack standard (torchattacks {torchattacks.__version__} classes, reference budgets) on {len(xa)} examples: "
              f"{len(xa) / t:.2f} examples/s, accuracy {100 * acc:.1f}% (implementation is torchattacks: no ratio)")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == '__main__':
    main()
