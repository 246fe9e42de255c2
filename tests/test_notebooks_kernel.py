"""The notebooks' tests as `tools/test` runs them (once, here; nbdev-test runs the same cells in its own engine).
Every notebook in nbs/ run top to bottom through a real Jupyter kernel of the project's environment (kernel
"ewas_nb", via nbclient), as a person pressing Run All in JupyterLab would: cwd nbs/, IN_TEST unset,
EWAS_KERNEL_TEST=1. Cells flagged slow/gpu/notest (`tst_flags`) are left out as nbdev-test leaves them out, in
memory. The runner is tools/build_site.py's; notebooks run two at a time, one test per notebook reports its own result,
and fails where the outputs saved in the notebook (what a reader sees before running it, and the docs site shows)
differ in kind from a fresh run's (tools/save_outputs.py refreshes them). A synthetic notebook shows the failure names the notebook and the cell."""
import sys
from pathlib import Path
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import build_site  # noqa: E402
from save_outputs import output_kinds  # noqa: E402

NOTEBOOKS = build_site.site_notebooks()

@pytest.fixture(scope='module')
def runs():
    "All notebooks, run once in parallel (shared with the docs build if it had to run one: a notebook saved without outputs)."
    return build_site.run_notebooks(NOTEBOOKS)

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_in_kernel(nb, runs):
    r = runs[nb.resolve()]
    assert r.ok, f"\n{r.error}"
    assert not r.cr_cells, (f"{nb.name}: raw carriage returns in a stream output (a text progress bar where a widget "
                            f"should be: use tqdm.auto): {', '.join(r.cr_cells)}")
    saved = {c.id: c.outputs for c in nbformat.read(nb, as_version=4).cells if c.cell_type == 'code'}
    stale = [f"cell {cid}: saved {sorted(output_kinds(saved.get(cid, [])))}, a run gives {sorted(output_kinds(o))}"
             for cid, o in r.outputs().items() if output_kinds(saved.get(cid, [])) != output_kinds(o)]
    assert not stale, (f"{nb.name}: the outputs saved in the notebook (the manual as read before running it) are not "
                       f"those a run gives; run `python tools/save_outputs.py {nb.relative_to(ROOT)}`:\n" + "\n".join(stale))

def _write(path, *cells):
    nbformat.write(new_notebook(cells=list(cells), metadata={'kernelspec': {'name': 'python3', 'display_name': 'python3',
                                                                          'language': 'python'}}), path)
    return path

def test_runner_names_failing_notebook_and_cell(tmp_path):
    p = _write(tmp_path/'99_broken.ipynb',
               new_markdown_cell('# A notebook with a failing cell'),
               new_code_cell('x = 1'),
               new_code_cell('#| slow\nraise RuntimeError("a slow cell is left out")'),
               new_code_cell('raise ValueError(f"boom {x}")'),
               new_code_cell('y = 2'))
    r = build_site.run_notebook(p, flags=['notest', 'slow', 'gpu'])
    assert not r.ok
    assert '99_broken.ipynb, cell 4 of 5' in r.error, r.error
    assert 'ValueError: boom 1' in r.error and 'raise ValueError' in r.error, r.error
    assert 'slow cell' not in r.error
    assert [c.outputs for c in r.nb.cells if c.source == 'y = 2'] == [[]], 'ran past the failing cell'

def test_runner_environment_and_progress_bars(tmp_path, monkeypatch):
    "cwd is the notebook's folder, IN_TEST unset, EWAS_KERNEL_TEST=1; tqdm.auto draws a widget; a raw \\r is caught."
    p = _write(tmp_path/'98_env.ipynb',
               new_code_cell('import os\nassert os.getcwd() == %r, os.getcwd()\n'
                             'assert "IN_TEST" not in os.environ and os.environ["EWAS_KERNEL_TEST"] == "1"' % str(tmp_path)),
               new_code_cell('from tqdm.auto import tqdm\nfor _ in tqdm(range(3)): pass'),
               new_code_cell('import sys\nsys.stderr.write("10%\\r50%\\r100%\\n")'))
    monkeypatch.setenv('IN_TEST', '1')  # as under nbdev-test: the kernel must not see it
    r = build_site.run_notebook(p, flags=[])
    assert r.ok, r.error
    widget = [o for o in r.nb.cells[1].outputs if build_site.WIDGET_MIME in o.get('data', {})]
    assert widget, f'tqdm.auto drew no widget: {r.nb.cells[1].outputs}'
    assert r.cr_cells == [f"cell 3 (id {r.nb.cells[2].id})"], r.cr_cells
