"""Dry runs of the paper's GPU recipes (experiments/paper_recipes.tsv): each command runs for a handful of steps on
CPU on a CIFAR-10 ImageFolder copy named by EWAS_DATA. Slow (about a minute per WRN row): enabled with EWAS_SLOW=1."""
import os, shlex, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get('EWAS_DATA') or '/nonexistent')  # a CIFAR-10 ImageFolder copy (tools/test sets it)

def recipes():
    "(model, row, paper numbers, command) for every line of the recipes file."
    rows = []
    for line in (ROOT/'experiments'/'paper_recipes.tsv').read_text().splitlines():
        if line.strip() and not line.startswith('#'):
            model, row, *nums, cmd = line.split('\t')
            rows.append((model, row, nums, cmd))
    return rows

def test_recipes_are_complete():
    rows = recipes()
    names = {(m, r) for m, r, _, _ in rows}
    for r in ('AT', 'AT+CAS', 'AT+CIFS', 'AT+EWAS', 'TRADES', 'TRADES+CAS', 'TRADES+EWAS', 'MART', 'MART+CAS', 'MART+EWAS'):
        assert ('ResNet-18', r) in names
    assert {r for m, r, _, _ in rows if m == 'WRN-34-10'} == {'AT', 'AT+EWAS', 'TRADES', 'TRADES+EWAS', 'MART', 'MART+EWAS'}
    assert any('svhn' in c for *_, c in rows)
    outs = [shlex.split(c)[shlex.split(c).index('--out') + 1] for *_, c in rows]
    assert len(set(outs)) == len(outs), "two recipes write to the same run directory"

@pytest.mark.skipif(os.environ.get('EWAS_SLOW') != '1', reason="slow: set EWAS_SLOW=1 to dry-run every recipe")
@pytest.mark.skipif(not DATA.is_dir(), reason="no CIFAR-10 ImageFolder copy: set EWAS_DATA")
@pytest.mark.parametrize('model,row,nums,cmd', recipes(), ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None)
def test_recipe_dry_run(model, row, nums, cmd, tmp_path):
    args = shlex.split(cmd)
    assert args[0] == 'ewas-train'
    exe = Path(sys.executable).parent/'ewas-train'
    dry = ['--dataset', 'folder', '--data-dir', str(DATA), '--train-subset', '32', '--batch', '16', '--epochs', '1',
           '--val-n', '8', '--val-steps', '1', '--steps', '2', '--threads', '1', '--quiet', '--out', str(tmp_path/'run')]
    r = subprocess.run([str(exe), *args[1:], *dry], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path/'run'/'last.pt').is_file() and (tmp_path/'run'/'metrics.csv').is_file()
