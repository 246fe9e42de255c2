"""The verdict table of the CPU-scale runs, from their committed reports: accuracy (%) per model and attack with 95%
Wilson intervals, and the per-example worst case over every attack on the same slice (AutoAttack included when it ran
on that slice), and, where it ran, the cascade's worst case once AutoAttack's whole set on the selector is added
(`experiments/cascade_eval.sh`). Writes results/cpu_repro/verdict.csv (every number, with n and interval) and verdict.md (the table
README.md and 08_reproduce show).

Usage: python experiments/verdict_table.py [RESULTS_DIR]"""
import json, math, sys
from pathlib import Path
import numpy as np, pandas as pd

RUNS = {'AT': 'at-s0', 'AT+CAS': 'cas-s0', 'AT+CIFS': 'cifs-s0', 'AT+EWAS': 'ewas-s0', 'AT (seed 1)': 'at-s1', 'AT+EWAS (seed 1)': 'ewas-s1'}
COLUMNS = [  # (column, source directory, attack)
    ('clean (10k)', 'eval-clean10k', 'clean'), ('clean', 'eval', 'clean'),
    ('FGSM paper', 'eval', 'fgsm-paper'), ('PGD-20 paper', 'eval', 'pgd20-paper'), ('CW paper', 'eval', 'cw-paper'),
    ('PGD-20 paper, early stop', 'eval', 'pgd20-paper-es'), ('CW paper, early stop', 'eval', 'cw-paper-es'),
    ('FGSM', 'eval', 'fgsm'), ('PGD-20', 'eval', 'pgd20'), ('CW', 'eval', 'cw'), ('AutoAttack', 'eval-aa', 'autoattack'),
    ('ALC', 'eval', 'alc'), ('BPDA', 'eval', 'bpda'), ('fixed masks, steered', 'eval', 'fixed-mask-steer'),
    ('selector APGD-CE', 'eval', 'selector-apgd-ce'), ('selector APGD-T', 'eval', 'selector-apgd-t'),
    ('FGSM (10k)', 'eval-10k', 'fgsm'), ('PGD-20 (10k)', 'eval-10k', 'pgd20'), ('CW (10k)', 'eval-10k', 'cw'),
    ('ALC (10k)', 'eval-10k', 'alc'), ('worst case (10k)', 'eval-10k', 'worst-case'),
    ('selector AutoAttack, cascade', 'eval-cascade', 'selector-autoattack')]   # cumulative: robust to every attack of the cascade
TABLE = ['clean (10k)', 'FGSM paper', 'PGD-20 paper', 'CW paper', 'PGD-20 paper, early stop', 'FGSM', 'PGD-20', 'CW', 'AutoAttack',
         'ALC', 'BPDA', 'selector APGD-CE', 'selector APGD-T']   # the columns of verdict.md (verdict.csv has every one)


def wilson(k, n, z=1.96):
    "95% Wilson interval (in %) of a proportion k/n."
    p, d = k / n, 1 + z * z / n
    c, h = (p + z * z / (2 * n)) / d, z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return 100 * (c - h), 100 * (c + h)


def report_rows(d: Path) -> list:
    "The rows of a finished report (report.json), at the report's own budgets (the first row per attack)."
    f = d/'report.json'
    if not f.exists(): return []
    rows, seen = [], set()
    for r in json.loads(f.read_text())['rows']:
        if r['attack'] in seen: continue
        seen.add(r['attack']); rows.append(r)
    return rows


def cell(model, column, r):
    k, n = int(r['robust']), int(r['n'])
    lo, hi = wilson(k, n)
    return dict(model=model, column=column, attack=r['attack'], n=n, robust=k, accuracy=round(100 * k / n, 1),
                lo=round(lo, 1), hi=round(hi, 1), implementation=r.get('implementation', ''), params=r.get('params', ''))


def verdict(res: Path) -> pd.DataFrame:
    out = []
    for model, run in RUNS.items():
        rows = {(sub, r['attack']): r for sub in ('eval', 'eval-aa', 'eval-clean10k', 'eval-10k', 'eval-cascade') for r in report_rows(res/run/sub)}
        main = [r for (sub, a), r in rows.items() if sub == 'eval' and a != 'worst-case']
        for column, sub, attack in COLUMNS:
            if (sub, attack) in rows: out.append(cell(model, column, rows[sub, attack]))
        n = main[0]['n']
        same = main + [r for (sub, a), r in rows.items() if sub == 'eval-aa' and a == 'autoattack' and r['n'] == n
                       and r['data_hash'] == main[0]['data_hash']]
        ok = np.ones(n, bool)
        for r in same: ok &= np.array([c == '1' for c in r['correct']])
        out.append(cell(model, 'worst case', dict(attack='worst-case', robust=int(ok.sum()), n=n, implementation=f"min over {len(same)} rows",
                                                  params='+'.join(r['attack'] for r in same))))
    return pd.DataFrame(out)


def markdown(df: pd.DataFrame) -> str:
    worst = ['worst case'] + [c for c in ('selector AutoAttack, cascade',) if c in set(df.column)]
    cols = [c for c in TABLE if c in set(df.column)] + worst
    t = df.assign(v=[f"{a:.1f}" if c not in worst else f"**{a:.1f}** [{lo:.1f}, {hi:.1f}]"
                     for a, lo, hi, c in zip(df.accuracy, df.lo, df.hi, df.column)]).pivot(index='model', columns='column', values='v')
    t = t.reindex(index=[m for m in RUNS if m in t.index], columns=cols).fillna('–')
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    return "\n".join(lines + [f"| {m} | " + " | ".join(t.loc[m]) + " |" for m in t.index]) + "\n"


if __name__ == '__main__':
    res = Path(sys.argv[1] if len(sys.argv) > 1 else 'results/cpu_repro')
    df = verdict(res)
    df.to_csv(res/'verdict.csv', index=False)
    (res/'verdict.md').write_text(markdown(df))
    print(markdown(df))
