"""The accuracy-vs-compute sweep of issue 18 (plain AT, `bash experiments/sweep.sh`) beside the chosen budget
(at-w025-e40-s0): for each run its width, epochs, training-attack steps K, training time on one CPU thread (the sum of
its epochs' times in metrics.csv), clean accuracy on all 10,000 test images and PGD-20 on the seeded 1,000 (95% Wilson
intervals). A run without a finished report is left out.
Writes results/budget/sweep/table.{csv,md} and sweep.png (accuracy against training CPU-hours).

Usage: python experiments/sweep_table.py [RESULTS_DIR]"""
import json, sys
from pathlib import Path
import matplotlib.pyplot as plt
import pandas as pd
from verdict_table import cell, report_rows

CHOSEN = 'at-w025-e40-s0'                  # the budget the four defences were trained at (results/budget/)


def point(d: Path, pgd_dir: str) -> dict:
    "One run's row, or {} while its training or either report is unfinished."
    cfg, m = d/'config.json', d/'metrics.csv'
    ten = {r['attack']: r for r in report_rows(d/'test10k')}
    pgd = {r['attack']: r for r in report_rows(d/pgd_dir)}
    if not (cfg.exists() and m.exists() and 'clean' in ten and 'pgd20' in pgd): return {}
    c, log = json.loads(cfg.read_text()), pd.read_csv(m)
    if len(log) < c['epochs']: return {}
    clean, rob = cell(d.name, 'clean', ten['clean']), cell(d.name, 'pgd20', pgd['pgd20'])
    return dict(run=d.name, width=c['width'], epochs=c['epochs'], steps=c['steps'], cpu_hours=round(log.time_s.sum() / 3600, 2),
                clean=clean['accuracy'], clean_lo=clean['lo'], clean_hi=clean['hi'], clean_n=clean['n'],
                pgd20=rob['accuracy'], pgd20_lo=rob['lo'], pgd20_hi=rob['hi'], pgd20_n=rob['n'], chosen=d.name == CHOSEN)


def table(res: Path) -> pd.DataFrame:
    rows = [point(d, 'eval') for d in sorted((res/'sweep').iterdir()) if d.is_dir()] if (res/'sweep').exists() else []
    rows.append(point(res/CHOSEN, 'eval-each'))
    return pd.DataFrame([r for r in rows if r]).sort_values('cpu_hours', ignore_index=True)


def markdown(df: pd.DataFrame) -> str:
    lines = ["| width | epochs | K | CPU-hours | clean (10k) | PGD-20 (1k) [95%] |", "|---|---|---|---|---|---|"]
    for r in df.itertuples():
        b = '**' if r.chosen else ''
        lines.append(f"| {b}{r.width:g}{b} | {b}{r.epochs}{b} | {b}{r.steps}{b} | {r.cpu_hours:.2f} | {r.clean:.1f} | {r.pgd20:.1f} [{r.pgd20_lo:.1f}, {r.pgd20_hi:.1f}] |")
    return "\n".join(lines) + "\n"


def figure(df: pd.DataFrame, path: Path):
    fig, axs = plt.subplots(1, 2, figsize=(9, 3.6), sharex=True)
    for ax, col, name in zip(axs, ('clean', 'pgd20'), ('clean accuracy, 10,000 test images', 'PGD-20 accuracy, 1,000 test images')):
        for w, g in df.groupby('width'):
            ax.errorbar(g.cpu_hours, g[col], yerr=[g[col] - g[col + '_lo'], g[col + '_hi'] - g[col]], fmt='o', capsize=3, label=f"width {w:g}")
            for r in g.itertuples(): ax.annotate(f"{r.epochs}ep K{r.steps}" + (" (chosen)" if r.chosen else ""), (r.cpu_hours, getattr(r, col)),
                                                 textcoords='offset points', xytext=(4, 4), fontsize=7)
        ax.set(title=name, xlabel='training time, CPU-hours (one thread)', ylabel='%'); ax.grid(alpha=.3)
    axs[0].legend(); fig.suptitle('Plain AT, ResNet-18: accuracy against training compute'); fig.tight_layout()
    fig.savefig(path, dpi=120); plt.close(fig)


if __name__ == '__main__':
    res = Path(sys.argv[1] if len(sys.argv) > 1 else 'results/budget')
    df = table(res)
    (res/'sweep').mkdir(exist_ok=True)
    df.to_csv(res/'sweep'/'table.csv', index=False)
    md = markdown(df)
    (res/'sweep'/'table.md').write_text(md)
    figure(df, res/'sweep'/'sweep.png')
    print(md)
