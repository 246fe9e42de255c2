"""Issue 19: the table of the EWAS variants without the label leak beside AT and the paper's EWAS, from the reports
`experiments/beyond_eval.py` wrote: accuracy (%) per model and attack (each attack alone, 500 test images) with 95%
Wilson intervals, the sanity checks passed, the worst case over every attack (the cascade on 1,000 test images), and
the mask diagnostics (200 images). Writes results/beyond/table.csv (every number, with n and interval),
results/beyond/table.md (the table nbs/09_beyond and README.md show) and results/beyond/mask.csv.

Usage: python experiments/beyond_table.py"""
import json
from pathlib import Path
import pandas as pd
from verdict_table import report_rows, wilson

OUT = Path('results/beyond')
MODELS = {'AT': 'results/cpu_repro/at-s{s}', 'AT+EWAS (paper)': 'results/cpu_repro/ewas-s{s}',
          '(a) predicted masks': 'results/beyond/ewas-pred-s{s}', '(b) soft masks': 'results/beyond/ewas-soft-s{s}',
          '(c) selector-adaptive training': 'results/beyond/ewas-sat-s{s}', '(d) one mean mask': 'results/beyond/ewas-mean-s{s}'}
COLUMNS = {'clean': 'clean', 'pgd20-paper': 'PGD-20 paper', 'cw-paper': 'CW paper', 'pgd20': 'PGD-20', 'cw': 'CW',
           'alc': 'ALC', 'bpda': 'BPDA', 'selector-apgd-ce': 'selector APGD-CE', 'transfer': 'transfer from AT'}
WORST = 'worst case (cascade)'


def cell(model, seed, column, k, n):
    lo, hi = wilson(k, n)
    return dict(model=model, seed=seed, column=column, n=n, robust=k, accuracy=round(100 * k / n, 1), lo=round(lo, 1), hi=round(hi, 1))


def table() -> tuple:
    cells, masks = [], []
    for model, pattern in MODELS.items():
        for s in (0, 1):
            run = Path(pattern.format(s=s))
            rows = {r['attack']: r for r in report_rows(run/'eval-beyond')}
            cells += [cell(model, s, col, int(rows[a]['robust']), int(rows[a]['n'])) for a, col in COLUMNS.items() if a in rows]
            rep = run/'eval-beyond'/'report.json'
            if rep.exists() and (chk := json.loads(rep.read_text()).get('checks')):
                cells.append(dict(model=model, seed=s, column='checks passed', n=len(chk), robust=sum(c['passed'] for c in chk),
                                  failed='; '.join(c['check'] for c in chk if not c['passed'])))
            casc = [r for r in report_rows(run/'eval-beyond-cascade') if r['attack'] != 'worst-case']
            if casc and casc[-1]['attack'] == 'autoattack':   # finished: robust to every attack of the cascade
                cells.append(cell(model, s, WORST, int(casc[-1]['robust']), int(casc[-1]['n'])))
            if (run/'mask.csv').exists(): masks.append(pd.read_csv(run/'mask.csv').assign(model=model, seed=s))
    return pd.DataFrame(cells), (pd.concat(masks) if masks else pd.DataFrame())


def markdown(df: pd.DataFrame) -> str:
    cols = [c for c in list(COLUMNS.values()) + ['checks passed', WORST] if c in set(df.column)]
    def fmt(r):
        if r.column == 'checks passed': return f"{r.robust}/{r.n}"
        return f"**{r.accuracy:.1f}** [{r.lo:.1f}, {r.hi:.1f}]" if r.column == WORST else f"{r.accuracy:.1f}"
    t = df.assign(v=[fmt(r) for r in df.itertuples()], row=[f"{m} (seed {s})" for m, s in zip(df.model, df.seed)])
    order = [f"{m} (seed {s})" for s in (0, 1) for m in MODELS]
    t = t.pivot(index='row', columns='column', values='v').reindex(index=[o for o in order if o in set(t.row)], columns=cols).fillna('–')
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    return "\n".join(lines + [f"| {m} | " + " | ".join(t.loc[m]) + " |" for m in t.index]) + "\n"


if __name__ == '__main__':
    df, masks = table()
    OUT.mkdir(parents=True, exist_ok=True)
    df.to_csv(OUT/'table.csv', index=False)
    (OUT/'table.md').write_text(markdown(df))
    if len(masks):
        for c in ('main', 'alc', 'agree', 'oracle', 'mask changed', 'wrong', 'follows'): masks[c] = (100 * masks[c]).round(1)
        masks.to_csv(OUT/'mask.csv', index=False)
    print(markdown(df))
