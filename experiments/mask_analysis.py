"""Which mask did the defence layer pick, and does the prediction follow it? For the label-driven runs of the CPU-scale
reproduction, on a fixed seeded slice of test images, clean and under attack:

- main: accuracy of the real model (predicted-class mask);       - alc: accuracy of the ALC's argmax (the mask's class);
- agree: how often the prediction equals the mask's class;        - oracle: accuracy with the true label's mask forced;
- mask changed: how often the attack changed the selected mask's class from the clean one;
- wrong: accuracy with the mask of a wrong class forced (y + 1 mod K); follows: how often the prediction is that class.
For the EWAS variants of nbs/09_beyond, whose masks do not come from the label, oracle and wrong force the label's
(or the wrong class's) row all the same (`select='label'` for the measurement).

Writes results/cpu_repro/mask_analysis.csv, or --out (08_reproduce and README.md read it; the budget runs' rows are in
results/budget/mask_analysis.csv: `--out results/budget/mask_analysis.csv results/budget/ewas-w025-e40-s0 results/budget/cas-w025-e40-s0`).
Usage: python experiments/mask_analysis.py [--n 200] [--data-dir DIR] [--out CSV] [RUN ...]   (default runs: ewas-s0 cas-s0)
(experiments/beyond_eval.py calls `mask_analysis` with a run directory and writes its rows to RUN_DIR/mask.csv.)"""
import argparse
from pathlib import Path
import pandas as pd, torch
from ewas_nb.core import aux_layers, set_layers, use_labels
from ewas_nb.runs import eval_mode, tune_cpu_allocator
from ewas_nb.baselines import load_model
from ewas_nb.attacks import make_attack
from ewas_nb.evaluate import test_slice

RES = Path('results/cpu_repro')
ATTACKS = ('pgd20', 'alc', 'selector-apgd-t')


def mask_analysis(run, n=200, eps=8/255, seed=0, attacks=ATTACKS, data_dir=None) -> list:
    path = Path(run) if Path(run).is_dir() else RES/run
    model, cfg = load_model(path/'last.pt', 'cpu')
    x, y = test_slice(cfg['dataset'], data_dir or cfg.get('data_dir'), n, seed, cfg.get('size'))
    layers = aux_layers(model); layer = layers[-1]
    k = layer.num_classes
    def forced(xs, labels):
        with set_layers([l for l in layers if hasattr(l, 'select')], 'select', 'label'), use_labels(model, labels): return model(xs).argmax(1)
    def stats(xs):
        with torch.no_grad(), eval_mode(model):
            pred = model(xs).argmax(1); cls = layer.aux_logits.argmax(1)
            return pred, cls, forced(xs, y), forced(xs, (y + 1) % k)
    cls0 = stats(x)[1]
    rows = []
    for name in ('clean',) + tuple(attacks):
        xs = x if name == 'clean' else make_attack(name, model, eps=eps, seed=seed)(x, y)
        pred, cls, oracle, wrong = stats(xs)
        rows.append({'run': path.name, 'input': name, 'n': n, 'main': (pred == y).float().mean().item(), 'alc': (cls == y).float().mean().item(),
                     'agree': (pred == cls).float().mean().item(), 'oracle': (oracle == y).float().mean().item(),
                     'mask changed': (cls != cls0).float().mean().item(), 'wrong': (wrong == y).float().mean().item(),
                     'follows': (wrong == (y + 1) % k).float().mean().item()})
        print(rows[-1], flush=True)
    return rows


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('runs', nargs='*', default=['ewas-s0', 'cas-s0']); p.add_argument('--n', type=int, default=200)
    p.add_argument('--data-dir', default=None)
    p.add_argument('--out', type=Path, default=RES/'mask_analysis.csv')
    a = p.parse_args()
    torch.set_num_threads(1); tune_cpu_allocator()
    df = pd.DataFrame([r for run in a.runs for r in mask_analysis(run, a.n, data_dir=a.data_dir)])
    for c in ('main', 'alc', 'agree', 'oracle', 'mask changed', 'wrong', 'follows'): df[c] = (100 * df[c]).round(1)
    df.to_csv(a.out, index=False)
    print(df.to_string(index=False))
