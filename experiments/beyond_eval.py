"""Issue 19: the evaluation of the EWAS variants without the label leak (nbs/09_beyond), beside AT and the paper's EWAS,
all at the CPU-scale budget of results/cpu_repro. For each run directory (its last.pt):

- eval-beyond/: each attack on its own on a seeded slice of 500 test images, with the sanity checks: clean, the paper's
  protocol (FGSM, PGD-20, CW, last iterate), FGSM, PGD-20, CW, the adaptive attacks that apply (ALC, ALC+CE, BPDA,
  selector APGD-CE) and a transfer attack (PGD-20 on the plain AT model of the same budget and seed);
- eval-beyond-cascade/: the worst case on 1,000 test images as a cascade (each attack only on the images every earlier
  one left correct): the attacks above, fixed masks (plain and steered), selector APGD-T, transfer and AutoAttack;
- mask.csv: the mask diagnostics (experiments/mask_analysis.py) on 200 images.

Both reports continue where they stopped when the command is run again (one thread).
Usage: python experiments/beyond_eval.py RUN_DIR [RUN_DIR ...]     (e.g. results/beyond/ewas-pred-s0 results/cpu_repro/at-s0)"""
import shutil, sys
from pathlib import Path
import pandas as pd, torch
from ewas_nb.attacks import adaptive_attacks
from ewas_nb.baselines import load_model
from ewas_nb.evaluate import run_evaluation
from ewas_nb.runs import tune_cpu_allocator
from mask_analysis import mask_analysis

ALONE = ['clean', 'fgsm-paper', 'pgd20-paper', 'cw-paper', 'fgsm', 'pgd20', 'cw']
ADAPTIVE_ALONE = ['alc', 'alc-ce', 'bpda', 'selector-apgd-ce']
CASCADE = ['clean', 'fgsm', 'fgsm-paper', 'fgsm-paper-es', 'pgd20-paper-es', 'pgd20', 'cw', 'pgd20-paper', 'cw-paper', 'cw-paper-es']
N_ALONE, N_CASCADE, N_MASK = 500, 1000, 200   # test images: each attack alone, the cascade, the mask diagnostics
ADAPTIVE_CASCADE = ['alc', 'alc-ce', 'bpda', 'selector-apgd-ce', 'selector-apgd-t', 'fixed-mask', 'fixed-mask-steer']   # (selector AutoAttack
# fooled none of the images these left correct on the committed EWAS and CAS runs, and costs more than all of them: left out)


def source_of(run: Path) -> Path:
    "The plain AT model of the same budget and seed: the transfer attack's source."
    return Path('results/cpu_repro') / f"at-s{run.name.rsplit('-s', 1)[1]}" / 'last.pt'


def trained(run: Path) -> bool:
    "Has the run's training finished? (experiments/cpu_repro.sh writes status.json then.)"
    return (run/'status.json').exists() and '"done": true' in (run/'status.json').read_text()


def evaluate(run: Path):
    model, cfg = load_model(run/'last.pt', 'cpu')
    applies = adaptive_attacks(model)
    src = source_of(run)
    transfer = ['transfer'] if applies else []   # the AT model itself: no transfer from itself
    budgets = {'transfer': {'source': str(src)}}
    common = dict(device='cpu', progress=True, adaptive=False, budgets=budgets)
    old, new = run/'eval-cascade', run/'eval-beyond-cascade'
    if (old/'rows.jsonl').exists() and not new.exists():   # the committed cascade of the same model: its rows are reused
        new.mkdir()                                          # (a row is reused only for the same model, data and attack)
        for f in ('rows.jsonl', 'batches.jsonl'): shutil.copy(old/f, new/f)
    for sub, attacks, n, extra in (('eval-beyond', ALONE + [a for a in ADAPTIVE_ALONE if a in applies] + transfer, N_ALONE, {}),
                                   ('eval-beyond-cascade', CASCADE + [a for a in ADAPTIVE_CASCADE if a in applies]
                                    + transfer + ['autoattack'], N_CASCADE, dict(cascade=True, checks=False))):
        run_evaluation(str(run/'last.pt'), out_dir=run/sub, attacks=attacks, n=n, **common, **extra)
    if applies and not (run/'mask.csv').exists():   # (written once: a second pass over the list does not redo it)
        pd.DataFrame(mask_analysis(run, n=N_MASK)).to_csv(run/'mask.csv', index=False)


if __name__ == '__main__':
    torch.set_num_threads(1); tune_cpu_allocator()
    for r in map(Path, sys.argv[1:]):
        if not trained(r): print(f"== {r}: training not finished, skipped", flush=True); continue
        print(f"== {r}", flush=True)
        try: evaluate(r)
        except FileExistsError as e: print(f"   skipped: {e}", flush=True)   # another process evaluates it (two may share the list)
