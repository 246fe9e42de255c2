"""Save the notebooks' outputs into nbs/*.ipynb, so that the manual shows its results before anyone runs it: on a code
host, in JupyterLab, and in the docs site (`build_site.py --exec auto` then runs nothing).

Each notebook runs top to bottom in the project's Jupyter kernel exactly as tests/test_notebooks_kernel.py runs it
(`build_site.run_notebook`: the cells nbdev-test leaves out are left out and keep no output). Its code cells then
get that run's outputs as a static page shows them (progress-bar widgets give way to their text, or go), with no
execution counts, figures re-encoded as 256-colour PNGs where that is smaller, and warnings without the file and
line of this machine they came from. Sources are never changed; a notebook whose run fails is not written (its error is printed, status
1). tests/test_notebooks_kernel.py fails when a fresh run's outputs differ in kind from the saved ones: run this then.

Usage: python tools/save_outputs.py [NOTEBOOK ...]     (default: every notebook of the site; a few minutes on 2 cores)"""
from __future__ import annotations
import base64, copy, io, re, sys
from pathlib import Path
import nbformat
from PIL import Image
import build_site as bs

def small_png(b64:str) -> str:
    "A base64 PNG as a 256-colour PNG (optimised) where that is smaller; else as it was."
    im = Image.open(io.BytesIO(base64.b64decode(b64)))
    buf = io.BytesIO()
    im.convert('RGBA').quantize(256, method=Image.Quantize.FASTOCTREE).save(buf, 'PNG', optimize=True)
    small = base64.b64encode(buf.getvalue()).decode()
    return small if len(small) < len(b64) else b64

_WARNING_AT = re.compile(r'^\S+\.py:\d+: (?=\w*Warning)')

def without_locations(text:str) -> str:
    "Python warnings as a reader needs them: 'path.py:12: UserWarning: ...' -> 'UserWarning: ...', the source line after it dropped."
    out, after = [], False
    for line in text.splitlines(keepends=True):
        if after and line.startswith('  '): after = False; continue
        after = bool(_WARNING_AT.match(line))
        out.append(_WARNING_AT.sub('', line))
    return ''.join(out)

def static_outputs(outputs:list) -> list:
    "`outputs` as a saved notebook keeps them: widgets replaced by their text (or dropped), small figures, no execution counts."
    out = [o for o in map(bs._clean_output, copy.deepcopy(outputs)) if o is not None]
    for o in out:
        if 'execution_count' in o: o['execution_count'] = None
        if 'image/png' in o.get('data', {}): o['data']['image/png'] = small_png(o['data']['image/png'])
        if o.output_type == 'stream' and o.name == 'stderr': o.text = without_locations(o.text)
    return out

def output_kinds(outputs:list) -> set:
    "What a cell shows, kind by kind (stdout, text/html, image/png, ...): stderr (warnings, logs) and widgets left out."
    return {m for o in static_outputs(outputs) if not (o.output_type == 'stream' and o.name == 'stderr')
            for m in ([o.name] if o.output_type == 'stream' else [o.output_type] if o.output_type == 'error' else o.get('data', {}))}

def save_outputs(path, run:bs.NbRun) -> int:
    "Write `run`'s outputs into the notebook at `path` (cells by id); returns the number of code cells with outputs."
    nb, outs = nbformat.read(path, as_version=4), run.outputs()
    for c in nb.cells:
        if c.cell_type != 'code': continue
        c.outputs, c.execution_count = static_outputs(outs.get(c.get('id'), [])), None
        c.metadata.pop('execution', None)
    nb.metadata.pop('widgets', None)
    nbformat.write(nb, path)
    return sum(bool(c.outputs) for c in nb.cells if c.cell_type == 'code')

def main(argv:list) -> int:
    paths = [Path(p) for p in argv] or bs.site_notebooks()
    missing = [str(p) for p in paths if not p.is_file()]
    if missing: print(f"error: no such notebook: {', '.join(missing)}", file=sys.stderr); return 2
    failed = 0
    for p, run in bs.run_notebooks(paths).items():
        if not run.ok: print(run.error, file=sys.stderr); failed += 1; continue
        print(f"{bs._rel(p)}: {save_outputs(p, run)} cells with outputs ({run.seconds:.0f} s)")
    return 1 if failed else 0

if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
