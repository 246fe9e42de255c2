"""The results table of the issue-18 budget runs (ResNet-18 x1/4, 40 epochs of PGD-3 AT on the 20,000 shared training
images), from their committed reports, written by `bash experiments/budget_eval.sh RUN`:
  test10k/    clean accuracy on all 10,000 test images;
  eval-each/  the paper's protocol (FGSM, PGD-20, CW, last iterate) and the standard attacks, each on all of a fixed
              seeded slice of 1,000 test images: the numbers the paper's claims are compared with;
  eval/       the cascade on the same 1,000 (clean, FGSM, PGD-20, CW, AutoAttack, then for label-driven defences the
              adaptive and selector attacks): each row counts the examples robust to it *and to every attack before it*,
              so its last row is the per-example worst case; with the sanity checks.
A report still running is left out (its columns show "–"). Accuracy in %, the worst case with its 95% Wilson interval.
Writes results/budget/table.csv (every number, with n and interval) and table.md (the table 08 and README.md show).

Usage: python experiments/budget_table.py [RESULTS_DIR]"""
import json, sys
from pathlib import Path
import pandas as pd
from verdict_table import cell, report_rows

RUNS = {'AT': 'at-w025-e40-s0', 'AT+CAS': 'cas-w025-e40-s0', 'AT+CIFS': 'cifs-w025-e40-s0', 'AT+EWAS': 'ewas-w025-e40-s0'}
EACH = [('FGSM paper', 'fgsm-paper'), ('PGD-20 paper', 'pgd20-paper'), ('CW paper', 'cw-paper'),
        ('FGSM', 'fgsm'), ('PGD-20', 'pgd20'), ('CW', 'cw')]
CASCADE = [('AutoAttack, cascade', 'autoattack'), ('worst case', 'worst-case')]   # cumulative rows of eval/
TABLE = ['clean (10k)', 'clean', *(c for c, _ in EACH), *(c for c, _ in CASCADE)]


def checks(d: Path) -> str:
    "'passed', 'FAILED: ...' or '' (no finished report)."
    f = d/'report.json'
    if not f.exists(): return ''
    failed = [f"{c['check']} ({c['value']}; expected {c['expected']})" for c in json.loads(f.read_text()).get('checks') or []
              if not c['passed']]
    return 'FAILED: ' + '; '.join(failed) if failed else 'passed'


def table(res: Path) -> pd.DataFrame:
    out = []
    for model, run in RUNS.items():
        d = res/run
        ten, each, casc = ({r['attack']: r for r in report_rows(d/sub)} for sub in ('test10k', 'eval-each', 'eval'))
        if 'clean' in ten: out.append(cell(model, 'clean (10k)', ten['clean']))
        if 'clean' in each: out.append(cell(model, 'clean', each['clean']))
        out += [cell(model, col, each[a]) for col, a in EACH if a in each]
        out += [cell(model, col, casc[a]) for col, a in CASCADE if a in casc]
        if casc: out.append(dict(model=model, column='checks', attack='sanity-checks', accuracy=None, implementation=checks(d/'eval'),
                                 params='cascade rows: ' + ', '.join(casc)))
    return pd.DataFrame(out)


def markdown(df: pd.DataFrame) -> str:
    num = df[df.column != 'checks']
    v = [f"**{a:.1f}** [{lo:.1f}, {hi:.1f}]" if c == 'worst case' else f"{a:.1f}" for a, lo, hi, c in zip(num.accuracy, num.lo, num.hi, num.column)]
    t = num.assign(v=v).pivot(index='model', columns='column', values='v')
    t = t.reindex(index=[m for m in RUNS if m in t.index], columns=TABLE).fillna('–')
    chk = df[df.column == 'checks'].set_index('model').implementation.to_dict()
    lines = ["| model | " + " | ".join(TABLE) + " | sanity checks |", "|---|" + "---|" * (len(TABLE) + 1)]
    return "\n".join(lines + [f"| {m} | " + " | ".join(t.loc[m]) + f" | {chk.get(m) or '–'} |" for m in t.index]) + "\n"


if __name__ == '__main__':
    res = Path(sys.argv[1] if len(sys.argv) > 1 else 'results/budget')
    df = table(res)
    df.to_csv(res/'table.csv', index=False)
    md = markdown(df)
    (res/'table.md').write_text(md)
    print(md)
