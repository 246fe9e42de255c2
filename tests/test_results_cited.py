"""Every result a reader sees in README.md, 08_reproduce and 09_beyond comes from a committed file under results/: the verdict
table is the one experiments/verdict_table.py wrote, and every one-decimal number of the results text (settings such
as "ε = 0.5" aside) is a number of those files (or of the paper's table in experiments/paper_recipes.tsv)."""
import json, re
from pathlib import Path
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT/'results'
NUM = re.compile(r"(?<![\d.])(?<!= )(?<!=)\d{1,3}\.\d(?![\d.])")   # a setting (ε = 0.5, eps=0.5) is not a result


ACC, MASK = ('accuracy', 'lo', 'hi'), ('main', 'alc', 'agree', 'oracle', 'mask changed', 'wrong', 'follows')
TABLES = [(RES/'cpu_repro'/'mask_analysis.csv', MASK), (RES/'budget'/'mask_analysis.csv', MASK),   # experiments/mask_analysis.py
          (RES/'budget'/'table.csv', ACC),                  # the issue-18 budget runs (08_reproduce, README)
          (RES/'budget'/'sweep'/'table.csv', ('cpu_hours', 'clean', 'clean_lo', 'clean_hi', 'pgd20', 'pgd20_lo', 'pgd20_hi')),
          (RES/'beyond'/'table.csv', ACC), (RES/'beyond'/'mask.csv', MASK)]   # nbs/09_beyond: the variants without the leak


def file_numbers() -> set:
    "One-decimal forms of every number in the result files the text may cite."
    nums = set()
    def add(v):
        try: nums.add(f"{float(v):.1f}")
        except (TypeError, ValueError): pass
    v = pd.read_csv(RES/'cpu_repro'/'verdict.csv')
    for c in ACC: v[c].map(add)
    for f, cols in TABLES:
        if f.exists():
            t = pd.read_csv(f)
            for c in cols:
                if c in t: t[c].map(add)   # (the small budget's mask file predates 'wrong' and 'follows')
    for f in RES.glob('digits_aa/*/report.csv'): (100 * pd.read_csv(f).accuracy).map(add)
    for f in RES.glob('budget/*/eval/report.json'):   # the sanity checks' measured and expected values
        for c in json.loads(f.read_text()).get('checks') or []:
            for k in ('value', 'expected'): add(str(c[k]).rstrip('%').lstrip('<>= '))
    for line in (ROOT/'experiments'/'paper_recipes.tsv').read_text().splitlines():
        if line and not line.startswith('#'): [add(x) for x in line.split('\t')[2:6]]
    return nums


def results_text() -> dict:
    "The results prose: README.md's results section, 08_reproduce's findings cells and 09_beyond's answer."
    readme = (ROOT/'README.md').read_text()
    start = readme.index('## Results')
    nb = json.loads((ROOT/'nbs'/'08_reproduce.ipynb').read_text())
    cells = [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown']
    findings = [c for c in cells if c.startswith(('## Findings', '## The verdict', '## At a larger budget', "## The paper's claims"))]
    beyond = [''.join(c['source']) for c in json.loads((ROOT/'nbs'/'09_beyond.ipynb').read_text())['cells']
              if c['cell_type'] == 'markdown' and ''.join(c['source']).startswith('## The answer')]
    return {'README.md': readme[start:readme.index('\n## ', start + 3) if '\n## ' in readme[start + 3:] else None],
            '08_reproduce': '\n'.join(findings), '09_beyond': '\n'.join(beyond)}


@pytest.mark.skipif(not (RES/'cpu_repro'/'verdict.csv').exists(), reason="no verdict table committed")
def test_verdict_table_is_the_committed_one():
    table = (RES/'cpu_repro'/'verdict.md').read_text().strip().splitlines()
    if (RES/'budget'/'table.md').exists(): table += (RES/'budget'/'table.md').read_text().strip().splitlines()
    readme = (ROOT/'README.md').read_text()
    missing = [l for l in table if l not in readme]
    assert not missing, missing


@pytest.mark.skipif(not (RES/'cpu_repro'/'verdict.csv').exists(), reason="no verdict table committed")
def test_every_number_of_the_results_text_is_in_a_results_file():
    known = file_numbers()
    for where, text in results_text().items():
        assert text.strip(), where
        unknown = sorted({n for n in NUM.findall(text) if n not in known})
        assert not unknown, f"{where} states {unknown}, which no results file holds"
