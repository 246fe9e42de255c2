"""Accuracy of a checkpoint on its whole test set under cheap attacks (default: clean only), without sanity checks.

The sanity checks and the expensive attacks (AutoAttack, adaptive) run on a seeded slice through `ewas-eval`; this
script gives the whole-test-set numbers beside them. Rows are kept in OUT_DIR as they finish: re-running continues.
Usage: python experiments/test_set_eval.py CHECKPOINT OUT_DIR [ATTACKS]     (ATTACKS e.g. clean,fgsm,pgd20,cw)"""
import sys
import torch
from ewas_nb.baselines import load_model
from ewas_nb.runs import tune_cpu_allocator
from ewas_nb.data import get_dataset, take
from ewas_nb.evaluate import robustness_report

if __name__ == '__main__':
    ck, out = sys.argv[1], sys.argv[2]
    attacks = sys.argv[3].split(',') if len(sys.argv) > 3 else ['clean']
    torch.set_num_threads(1); tune_cpu_allocator()
    model, cfg = load_model(ck, 'cpu')
    ds = get_dataset(cfg['dataset'], cfg.get('data_dir'), train=False, **({'size': cfg['size']} if cfg.get('size') else {}))
    x, y = take(ds)
    df = robustness_report(model, x, y, attacks=attacks, checks=False, worst_case=len(attacks) > 1, progress=True,
                           verbose=False, out_dir=out, meta=dict(checkpoint=ck))
    print(f"{ck} on {len(y)} test images: " + ", ".join(f"{a} {acc:.4f}" for a, acc in zip(df.attack, df.accuracy)))
