"""The cascade worst case against the full table's, on a committed run: the same attacks, in the same order (cheap to
expensive), each run only on the examples every earlier one left correct; compared with the committed full report
(every attack on every example) example by example, with the attack time of both.

Usage: python experiments/cascade_vs_full.py RUN [--data-dir DIR]     (writes results/cpu_repro/RUN/eval-cascade/)"""
import argparse, json, time
from pathlib import Path
import torch
from ewas_nb.baselines import load_model
from ewas_nb.evaluate import EvalSpec, robustness_report, test_slice
from ewas_nb.runs import tune_cpu_allocator

ORDER = ['clean', 'fgsm', 'fgsm-paper', 'fgsm-paper-es', 'pgd20-paper-es', 'pgd20', 'cw', 'pgd20-paper', 'cw-paper', 'cw-paper-es',
         'alc', 'alc-ce', 'bpda', 'selector-apgd-ce', 'selector-apgd-t', 'fixed-mask', 'fixed-mask-steer']

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('run'); p.add_argument('--data-dir', default=None)
    a = p.parse_args()
    torch.set_num_threads(1); tune_cpu_allocator()
    res = Path('results/cpu_repro')/a.run
    full = {r['attack']: r for r in json.loads((res/'eval'/'report.json').read_text())['rows']}
    names = [n for n in ORDER if n in full]
    ref = full['worst-case'] if set(full['worst-case']['params'].split('+')) == set(names) else None
    model, cfg = load_model(res/'last.pt', 'cpu')
    x, y = test_slice(cfg['dataset'], a.data_dir or cfg.get('data_dir'), full['clean']['n'], full['clean']['seed'], cfg.get('size'))
    spec = EvalSpec(eps=full['pgd20']['eps_float'], n=len(x), seed=full['clean']['seed'], checks=False, cascade=True)
    t0 = time.perf_counter()
    df = robustness_report(model, x, y, names, spec, out_dir=res/'eval-cascade', progress=False, verbose=False)
    wall = time.perf_counter() - t0
    casc = df.iloc[-1]
    t_full = sum(full[n]['time_s'] for n in names)
    diff = sum(u != v for u, v in zip(casc['correct'], full['worst-case']['correct'])) if ref else None
    print(f"{a.run}: {len(names)} attacks on {len(x)} examples; full table: worst case {100 * full['worst-case']['accuracy']:.1f}%, "
          f"attack time {t_full:.0f} s (as recorded in its report); cascade: worst case {100 * casc['accuracy']:.1f}%, "
          f"attack time {df.time_s[:-1].sum():.0f} s ({wall:.0f} s wall); {t_full / df.time_s[:-1].sum():.1f}x faster; "
          f"{diff} of {len(x)} examples differ in the worst case")
    for _, r in df.iterrows(): print(f"  {r['attack']:18s} {100 * r['accuracy']:5.1f}%  {r['time_s']:7.1f} s  {r['params'].split('; ')[-1]}")
