"""Write README.md from nbs/index.ipynb without Quarto (nbconvert's markdown exporter).
`nbdev-readme` needs Quarto, which is not installable everywhere; this keeps README.md reproducible anywhere.
Usage: python tools/readme.py [--check]   (--check: exit 1 if README.md is not what index.ipynb gives)"""
import re, sys
from pathlib import Path
import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parents[1]

def render() -> str:
    nb = nbformat.read(ROOT/'nbs'/'index.ipynb', as_version=4)
    cells = []
    for c in nb.cells:
        lines = c.source.splitlines()
        if c.cell_type == 'code':
            if any(re.match(r'#\|\s*(hide|exporti?|include:\s*false)\b', l) for l in lines): continue
            c.source = '\n'.join(l for l in lines if not l.startswith('#|'))
            for o in c.get('outputs', []):  # tables as text: a README shows no notebook HTML or its styles
                if 'text/plain' in o.get('data', {}): o['data'].pop('text/html', None)
        cells.append(c)
    nb.cells = cells
    body, _ = MarkdownExporter().from_notebook_node(nb)
    body = re.sub(r'\n{3,}', '\n\n', body).strip() + '\n'
    return "<!-- Generated from nbs/index.ipynb by tools/readme.py: edit the notebook, not this file. -->\n\n" + body

if __name__ == '__main__':
    text = render()
    if '--check' in sys.argv:
        if (ROOT/'README.md').read_text() != text:
            sys.exit("README.md is out of sync with nbs/index.ipynb: run `python tools/readme.py`")
    else: (ROOT/'README.md').write_text(text)
