"""Recompute rows of a committed report with the package as it is now, and compare them example by example.

Usage: python experiments/recompute_rows.py CHECKPOINT REPORT_DIR ATTACK[,ATTACK...] [--data-dir DIR]
Prints, per attack, the committed and recomputed accuracy and how many of the n examples changed outcome; writes
nothing (the rows are computed in memory). Exit status 1 if any example changed."""
import argparse, json, sys
from pathlib import Path
import torch
from ewas_nb.baselines import load_model
from ewas_nb.evaluate import EvalSpec, robustness_report, test_slice
from ewas_nb.runs import tune_cpu_allocator

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('checkpoint'); p.add_argument('report'); p.add_argument('attacks'); p.add_argument('--data-dir', default=None)
    a = p.parse_args()
    torch.set_num_threads(1); tune_cpu_allocator()
    old = {r['attack']: r for r in json.loads((Path(a.report)/'report.json').read_text())['rows']}   # the report's own rows
    names = a.attacks.split(',')
    ref = old[names[0]]
    model, cfg = load_model(a.checkpoint, 'cpu')
    x, y = test_slice(cfg['dataset'], a.data_dir or cfg.get('data_dir'), ref['n'], ref['seed'], cfg.get('size'))
    spec = EvalSpec(eps=ref['eps_float'], n=ref['n'], seed=ref['seed'], checks=False, worst_case=False)
    df = robustness_report(model, x, y, names, spec, progress=False, verbose=False)
    changed = 0
    for r in df.to_dict('records'):
        o = old[r['attack']]
        diff = sum(u != v for u, v in zip(o['correct'], r['correct']))
        changed += diff
        print(f"{r['attack']}: committed {o['accuracy']:.3f} ({o['implementation']}), now {r['accuracy']:.3f} "
              f"({r['implementation']}); data {o['data_hash']} vs {r['data_hash']}; {diff} of {r['n']} examples changed")
    sys.exit(1 if changed else 0)
