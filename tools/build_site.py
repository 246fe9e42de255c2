"""Build the documentation site in _docs/ without Quarto, and run notebooks through a real Jupyter kernel.

Site: nbdev's processed notebooks (_proc/, `show_doc` rendered as markdown) are rendered by nbconvert's
HTMLExporter (its JupyterLab template, extended with a page frame: top bar, sidebar listing every page,
per-page contents). Notebooks saved without outputs are executed first (`--exec auto`), so the pages show
results and figures. Links to notebooks (`00_core.ipynb`) become links to their pages (`core.html`, the
`output-file` nbdev gives them, as Quarto would). `bash tools/docs` calls this when `quarto` is missing.
Formulas: MathJax 3, pinned, fetched once from the npm registry (`npm pack`, integrity checked, kept in
~/.cache/ewas_nb/npm/) and copied into the site (_docs/mathjax/), so pages render TeX offline; where it can be neither
fetched nor found in the cache the build says so and the pages load it from a CDN (`--mathjax-url URL` asks for that).

Runner (also used by tests/test_notebooks_kernel.py): `run_notebook(path)` executes a notebook top to bottom with
nbclient in the kernel "ewas_nb" (the project's .venv; "python3" of this interpreter if that is not registered),
cwd = the notebook's folder, IN_TEST unset, EWAS_KERNEL_TEST=1, MPLBACKEND unset (inline figures). The cells
nbdev-test leaves out are left out (flags in `tst_flags`: notest slow gpu; `eval: false`; `skip_exec`), in memory:
files in nbs/ are never written. The first failing cell is named: notebook, cell number, id, error.

Usage: python tools/build_site.py [--exec auto|all|none] [--out DIR] [--workers N] [--mathjax-url URL] [--keep-going]"""
from __future__ import annotations
import argparse, copy, hashlib, os, re, shutil, subprocess, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

import nbformat, yaml
from bs4 import BeautifulSoup
from jinja2 import DictLoader
from markupsafe import Markup
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from nbconvert.filters import strip_ansi
from nbconvert.preprocessors import TagRemovePreprocessor

ROOT = Path(__file__).resolve().parents[1]
MATHJAX_URL = "https://cdn.jsdelivr.net/npm/mathjax@3.2.2/es5/tex-chtml.js"  # the CDN: offline, TeX stays as text
LOCAL = 'local'  # `mathjax_url` meaning: the pinned MathJax below, copied into the site
# MathJax 3 from the npm registry (`npm pack`), pinned by version and by the registry's integrity (sha512 of the
# tarball, `npm view mathjax@3.2.2 dist.integrity`). Only what tex-chtml.js loads is copied into the site, paths
# relative to es5/ kept (MathJax finds its fonts and extensions next to the script): 2.1 MB of 24.
MATHJAX_PKG, MATHJAX_VERSION = 'mathjax', '3.2.2'
MATHJAX_INTEGRITY = 'sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=='
# (TeX extensions are autoloaded by commands such as \color; the menu's accessibility options, which need
# a11y/ and the 4 MB speech engine sre/, are not copied.)
MATHJAX_FILES = ('es5/tex-chtml.js', 'es5/output/chtml/fonts/woff-v2/', 'es5/input/tex/extensions/', 'LICENSE')
MATHJAX_DIR = 'mathjax'  # in the site: mathjax/tex-chtml.js
IMAGE_EXTS = {'.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp'}
WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'
CELL_KEYS = {'cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count', 'attachments'}

def nbdev_config():
    "The project's nbdev settings (pyproject.toml [tool.nbdev])."
    from nbdev.config import get_config
    return get_config(ROOT)

def site_notebooks(nbs:Path|None=None) -> list[Path]:
    "The notebooks nbdev tests and documents (nbdev's `nbglob`: names starting with `_` or `.` are left out)."
    from nbdev.doclinks import nbglob
    return sorted(Path(p) for p in nbglob(nbs or nbdev_config().nbs_path, as_path=True))

# ---------------------------------------------------------------- running notebooks in a Jupyter kernel
def default_kernel() -> str:
    "'ewas_nb' (the project's venv kernel) if registered, else 'python3' (ipykernel's spec: this interpreter)."
    from jupyter_client.kernelspec import KernelSpecManager
    return 'ewas_nb' if 'ewas_nb' in KernelSpecManager().find_kernel_specs() else 'python3'

def kernel_env() -> dict:
    "Environment of the kernel: as nbdev-test's but IN_TEST unset, EWAS_KERNEL_TEST=1, figures inline."
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'MPLBACKEND')}
    env['EWAS_KERNEL_TEST'] = '1'
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(ROOT), env.get('PYTHONPATH', '')) if p)
    return env

def tst_flags() -> list[str]:
    "Directives whose cells are left out (nbdev's `tst_flags`)."
    f = nbdev_config().tst_flags
    return f.split() if isinstance(f, str) else list(f or [])

def _rel(p:Path) -> str:
    p = Path(p).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)

_CR = re.compile(r'\r(?!\n)')

@dataclass
class NbRun:
    "The result of running one notebook: the executed copy (only the cells that ran), the first error, timing."
    path: Path
    nb: nbformat.NotebookNode
    error: str|None = None         # the first failing cell, named; None when every cell ran
    seconds: float = 0.0
    n_cells: int = 0               # cells that ran (or were to run)
    cr_cells: list = field(default_factory=list)  # "cell N" whose stream output holds raw carriage returns
    @property
    def ok(self) -> bool: return self.error is None
    def outputs(self) -> dict:
        "Cell id -> outputs of the executed code cells."
        return {c.id: c.outputs for c in self.nb.cells if c.cell_type == 'code' and c.get('id')}

def _describe_failure(path, i, total, cell, e) -> str:
    src = cell.source.strip().splitlines()
    head = '\n'.join('    | ' + l for l in src[:4]) + ('\n    | ...' if len(src) > 4 else '')
    if isinstance(e, CellExecutionError):
        what = f"{e.ename}: {e.evalue}"
        tb = strip_ansi(e.traceback or '').strip().splitlines()
        detail = '\n'.join('    ' + l for l in tb[-12:])
    else: what, detail = f"{type(e).__name__}: {e}", ''
    return (f"{_rel(path)}, cell {i + 1} of {total} (id {cell.get('id', '?')}) failed with {what.strip()}\n"
            f"  source:\n{head}" + (f"\n  traceback (end):\n{detail}" if detail else ''))

def run_notebook(path, kernel_name:str|None=None, timeout:int|None=None, flags:list|None=None) -> NbRun:
    "Execute notebook `path` top to bottom in a Jupyter kernel, leaving out the cells nbdev-test leaves out."
    from nbdev.test import nb_test_cells
    path = Path(path).resolve()
    flags = tst_flags() if flags is None else flags
    nb = nbformat.read(path, as_version=4)
    total = len(nb.cells)
    keep = sorted({c.idx_ for c in nb_test_cells(path, flags)})
    run = copy.deepcopy(nb)
    run.cells = [run.cells[i] for i in keep]
    for c in run.cells:
        if c.cell_type == 'code': c.outputs, c.execution_count = [], None
    res = NbRun(path, run, n_cells=len(keep))
    if not keep: return res
    client = NotebookClient(run, kernel_name=kernel_name or default_kernel(),
                            timeout=timeout or nbdev_config().cell_timeout or None, startup_timeout=120,
                            resources={'metadata': {'path': str(path.parent)}})
    t0, exc = time.time(), None
    with tempfile.TemporaryFile('w+') as klog:  # the kernel's own stderr: shown only when the kernel fails
        try:
            with client.setup_kernel(env=kernel_env(), stderr=klog):
                for j, i in enumerate(keep):
                    try: client.execute_cell(run.cells[j], j)
                    except Exception as e:
                        exc, res.error = e, _describe_failure(path, i, total, run.cells[j], e)
                        break
        except Exception as e:  # the kernel did not start, or died outside a cell
            exc = exc or e
            res.error = res.error or f"{_rel(path)}: kernel {client.kernel_name!r} failed: {type(e).__name__}: {e}"
        if exc is not None and not isinstance(exc, CellExecutionError):
            klog.seek(0)
            tail = [l for l in klog.read().splitlines() if 'without encryption' not in l][-8:]
            if tail: res.error += '\n  kernel stderr (end):\n' + '\n'.join('    ' + l for l in tail)
    res.seconds = time.time() - t0
    for j, c in zip(keep, run.cells):
        if c.cell_type == 'code' and any(o.output_type == 'stream' and _CR.search(o.text) for o in c.outputs):
            res.cr_cells.append(f"cell {j + 1} (id {c.get('id', '?')})")
    return res

_RUNS: dict = {}
_RUNS_LOCK = threading.Lock()

def _run_key(p:Path, flags) -> tuple:
    return (str(Path(p).resolve()), hashlib.sha256(Path(p).read_bytes()).hexdigest(), tuple(flags))

def run_notebooks(paths, workers:int|None=None, flags:list|None=None) -> dict:
    "Run `paths` in parallel (`workers` kernels at once); results are kept for this process, keyed by file content."
    flags = tst_flags() if flags is None else flags
    paths = [Path(p).resolve() for p in paths]
    workers = workers or int(os.environ.get('EWAS_NB_WORKERS', 0)) or min(2, os.cpu_count() or 1)
    with _RUNS_LOCK:
        keys = {p: _run_key(p, flags) for p in paths}  # the content asked for (a notebook may be saved meanwhile)
        todo = [p for p in paths if keys[p] not in _RUNS]
        if todo:
            with ThreadPoolExecutor(max(1, min(workers, len(todo)))) as ex:
                for p, r in zip(todo, ex.map(lambda p: run_notebook(p, flags=flags), todo)):
                    _RUNS[keys[p]] = r
        return {p: _RUNS[keys[p]] for p in paths}

# ---------------------------------------------------------------- MathJax, offline
def cache_dir() -> Path:
    "Where npm tarballs are kept between builds, outside the repository: the project's cache (as ewas_nb.data's) + npm/."
    d = os.environ.get('EWAS_NB_CACHE') or Path(os.environ.get('XDG_CACHE_HOME') or Path.home()/'.cache')/'ewas_nb'
    return Path(d)/'npm'

def npm_integrity(path:Path) -> str:
    "The npm registry's integrity string of a tarball: 'sha512-' + base64 of its SHA-512."
    import base64
    return 'sha512-' + base64.b64encode(hashlib.sha512(Path(path).read_bytes()).digest()).decode()

def fetch_mathjax(cache:Path|None=None, timeout:int=180) -> Path:
    """The pinned MathJax tarball: from the cache if there and intact, else `npm pack`ed from the registry into it.
    Raises RuntimeError saying why when it is neither cached nor fetchable (no npm, no network, wrong integrity)."""
    cache = Path(cache or cache_dir())
    tgz = cache/f'{MATHJAX_PKG}-{MATHJAX_VERSION}.tgz'
    if tgz.is_file() and npm_integrity(tgz) == MATHJAX_INTEGRITY: return tgz
    npm = shutil.which('npm')
    if not npm: raise RuntimeError('npm is not on PATH')
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as d:
        env = {'npm_config_fetch_retries': '1', **os.environ, 'npm_config_fund': 'false', 'npm_config_audit': 'false',
               'npm_config_update_notifier': 'false'}
        try: r = subprocess.run([npm, 'pack', f'{MATHJAX_PKG}@{MATHJAX_VERSION}', '--loglevel=error',
                                 '--pack-destination', d], cwd=d, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired: raise RuntimeError(f'npm pack timed out after {timeout} s') from None
        got = Path(d)/tgz.name
        if r.returncode or not got.is_file():
            err = [l.removeprefix('npm error').strip() for l in r.stderr.splitlines() if l.startswith('npm error')]
            err = [l for l in err if 'Error' in l] or [l for l in err if l] or ['no message']
            raise RuntimeError(f'npm pack failed (exit {r.returncode}): {err[0]}')
        if (i := npm_integrity(got)) != MATHJAX_INTEGRITY:
            raise RuntimeError(f'{tgz.name} from the registry has integrity {i}, not the pinned {MATHJAX_INTEGRITY}')
        os.replace(got, tgz)
    return tgz

def copy_mathjax(tgz:Path, dest:Path) -> Path:
    "Extract the files of MATHJAX_FILES (paths under es5/ kept) from the tarball into `dest`; returns the script."
    import tarfile
    dest = Path(dest)
    with tarfile.open(tgz) as tf:
        for m in tf.getmembers():
            name = m.name.removeprefix('package/')
            if not m.isfile() or '..' in PurePosixPath(name).parts: continue
            if not any(name == f or (f.endswith('/') and name.startswith(f)) for f in MATHJAX_FILES): continue
            target = dest/name.removeprefix('es5/')
            target.parent.mkdir(parents=True, exist_ok=True)
            with tf.extractfile(m) as src, open(target, 'wb') as dst: shutil.copyfileobj(src, dst)
    script = dest/'tex-chtml.js'
    if not script.is_file(): raise RuntimeError(f'{tgz} holds no es5/tex-chtml.js')
    return script

def site_mathjax(mathjax_url, site_dir:Path, log=print) -> tuple:
    """What the pages load for formulas -> (src, where): with `mathjax_url` LOCAL, the pinned MathJax copied into
    `site_dir`/mathjax/ (src relative to the site root, where 'local'); if it can be neither fetched nor found in the
    cache, one line says so and the pages load it from the CDN (where 'cdn'). Any other URL is used as given
    (where 'url'); None: no MathJax."""
    if not mathjax_url: return None, 'none'
    if mathjax_url != LOCAL: return mathjax_url, 'url'
    try: script = copy_mathjax(fetch_mathjax(), Path(site_dir)/MATHJAX_DIR)
    except (RuntimeError, OSError) as e:
        log(f'[docs] warning: MathJax {MATHJAX_VERSION} could not be fetched from the npm registry ({e}) and is not '
            f'in {cache_dir()}: pages load it from {MATHJAX_URL}, formulas stay TeX offline')
        return MATHJAX_URL, 'cdn'
    return script.relative_to(site_dir).as_posix(), 'local'

# ---------------------------------------------------------------- processed notebooks -> pages
PROC_SNIPPET = """
import os, sys
from nbdev.config import get_config
from nbdev.serve import proc_nbs
cfg = get_config()
os.chdir(cfg.config_path)
proc_nbs(cfg.nbs_path, n_workers=int(sys.argv[1]))
"""

def process_notebooks(workers:int=0) -> Path:
    """nbdev's processing (`show_doc` rendered, directives applied) into _proc/: what `nbdev-proc-nbs` does, less
    its attempt to install Quarto with sudo (which would prompt for a password where sudo exists)."""
    r = subprocess.run([sys.executable, '-c', PROC_SNIPPET, str(workers)], cwd=ROOT, capture_output=True, text=True)
    if r.returncode:  # (its output is otherwise only nbdev's hints about cells mixing imports and code)
        tail = '\n'.join((r.stdout + r.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"nbdev's processing of the notebooks failed (exit {r.returncode}):\n{tail}")
    return ROOT/'_proc'

_DIRECTIVE = re.compile(r'^\s*#\|\s?(.*)$')

def split_directives(source:str) -> tuple[dict, str]:
    "Leading `#| key: value` lines of a cell -> ({key: value}, the rest of the source)."
    lines, d = source.splitlines(), {}
    i = 0
    while i < len(lines) and (_DIRECTIVE.match(lines[i]) or (not lines[i].strip() and d)):
        m = _DIRECTIVE.match(lines[i])
        if m:
            k, _, v = m.group(1).partition(':')
            d[k.strip()] = v.strip()
        i += 1
    return d, '\n'.join(lines[i:])

def _false(v) -> bool: return str(v).strip().lower() in ('false', 'no', '0')

def front_matter(nb) -> dict:
    "The YAML front matter nbdev puts in a raw cell at the top of a processed notebook (removed from `nb`)."
    for i, c in enumerate(nb.cells):
        if c.cell_type == 'raw' and c.source.lstrip().startswith('---'):
            body = c.source.strip().strip('-').strip()
            del nb.cells[i]
            try: return yaml.safe_load(body) or {}
            except yaml.YAMLError: return {}
        if c.cell_type != 'raw': break
    return {}

_H1, _QUOTE = re.compile(r'^#\s+\S'), re.compile(r'^>\s?(.*?)\s*$')

def notebook_summary(nb) -> str:
    """The `> summary` under a notebook's `# Title`, all its lines joined. nbdev's front matter (fastcore's
    `md_frontmatter`) keeps only the first line of a summary written over several `>` lines and drops the others
    with the title cell: a description cut mid-sentence."""
    for c in nb.cells:
        if c.cell_type != 'markdown': continue
        lines = c.source.splitlines()
        if not any(_H1.match(l) for l in lines): continue
        start = next((i for i, l in enumerate(lines) if re.match(r'^>\s+\S', l)), None)
        if start is None: return ''
        quote = []
        for l in lines[start:]:
            m = _QUOTE.match(l)
            if not m or not m.group(1): break  # the blockquote's paragraph ends at a blank or unquoted line
            quote.append(m.group(1))
        return ' '.join(quote)
    return ''

def page_description(fm:dict, source_nb) -> str:
    "The page's subtitle: nbdev's `description`, or the whole summary of the source notebook where nbdev cut it."
    d, full = str(fm.get('description') or ''), notebook_summary(source_nb)
    return full if d and full.startswith(d) else d

def _clean_output(o):
    "Outputs as a static page shows them: progress-bar widgets fall back to their text; None drops the output."
    if o.output_type in ('display_data', 'execute_result'):
        data = o.get('data', {})
        if WIDGET_MIME in data:
            if len(data) == 1: return None
            del data[WIDGET_MIME]
    return o

def prepare_page(nb, outputs:dict|None=None) -> tuple:
    "A processed notebook -> (notebook to render, front matter): cells filtered and directives applied."
    nb = copy.deepcopy(nb)
    fm, outputs, cells = front_matter(nb), outputs or {}, []
    nb.metadata.pop('widgets', None)
    for c in nb.cells:
        for k in set(c) - CELL_KEYS: del c[k]  # nbdev's processing adds private keys (`has_sd`)
        c.metadata.pop('execution', None)      # ... and timings nbformat's schema rejects
        if c.cell_type == 'code':
            d, body = split_directives(c.source)
            if _false(d.get('include', 'true')): continue
            if c.get('id') in outputs: c.outputs = copy.deepcopy(outputs[c.id])
            if _false(d.get('output', 'true')): c.outputs = []
            c.outputs = [o for o in map(_clean_output, c.outputs) if o is not None]
            c.source = body.strip('\n')
            tags = set(c.metadata.get('tags', []))
            if _false(d.get('echo', 'true')) or not c.source.strip(): tags.add('remove_input')
            if 'remove_input' in tags and not c.outputs: continue
            c.metadata['tags'] = sorted(tags)
        elif c.cell_type == 'markdown' and not c.source.strip(): continue
        cells.append(c)
    nb.cells = cells
    return nb, fm

PAGE_TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{#- a static, offline page: no require.js, widget manager or mermaid from a CDN; MathJax async at the end -#}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block extra_css -%}
<link rel="stylesheet" href="{{ resources.page.root }}site.css">
{%- if resources.page.description %}
<meta name="description" content="{{ resources.page.description | e }}">
{%- endif %}
{%- endblock extra_css -%}
{%- block body_header -%}
<body data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
<header class="site-header">
  <a class="site-title" href="{{ resources.page.root }}index.html">{{ resources.site.title | e }}</a>
  <span class="site-description">{{ resources.site.description | e }}</span>
</header>
<div class="site-body">
<nav class="site-nav" aria-label="Pages">
  <ul>
  {%- for p in resources.site.pages %}
    <li{% if p.file == resources.page.file %} class="active"{% endif %}>
      <a href="{{ resources.page.root }}{{ p.file }}">{{ p.title | e }}</a></li>
  {%- endfor %}
  </ul>
  <div class="page-toc" aria-label="On this page"></div>
</nav>
<main class="jp-Notebook site-main">
<header class="page-header">
  <h1 class="page-title" id="{{ resources.page.anchor }}">{{ resources.page.title | e }}</h1>
  {%- if resources.page.description %}
  <p class="page-description">{{ resources.page.description | e | inline_code }}</p>
  {%- endif %}
</header>
{%- endblock body_header -%}
{%- block body_footer -%}
<footer class="page-footer">
  Generated from <code>{{ resources.page.source | e }}</code> by <code>tools/docs</code>.</footer>
</main>
</div>
{%- if resources.page.mathjax_src %}
<script>window.MathJax = {tex: {inlineMath: [['$', '$'], ['\\(', '\\)']], displayMath: [['$$', '$$'], ['\\[', '\\]']],
  processEscapes: true}, options: {skipHtmlTags: ['script', 'noscript', 'style', 'textarea', 'pre', 'code']}};</script>
<script async id="MathJax-script" src="{{ resources.page.mathjax_src }}"></script>
{%- endif %}
</body>
{%- endblock body_footer -%}
"""

SITE_CSS = """
:root { --site-nav-width: 17rem; --site-header-height: 3rem; }
html, body { margin: 0; padding: 0; background: var(--jp-layout-color0, #fff); }
body { font-family: var(--jp-ui-font-family, system-ui, sans-serif); }
.site-header { position: fixed; top: 0; left: 0; right: 0; height: var(--site-header-height); z-index: 10;
  display: flex; align-items: center; gap: 1rem; padding: 0 1.25rem; background: #1a4d8f; color: #fff; }
.site-header a.site-title { color: #fff; font-weight: 600; font-size: 1.15rem; text-decoration: none; }
.site-header .site-description { opacity: .85; font-size: .85rem; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
.site-body { display: flex; padding-top: var(--site-header-height); }
.site-nav { position: fixed; top: var(--site-header-height); bottom: 0; width: var(--site-nav-width);
  overflow-y: auto; box-sizing: border-box; padding: 1rem .75rem; border-right: 1px solid #e3e3e3;
  background: #f7f8fa; font-size: .9rem; }
.site-nav ul { list-style: none; margin: 0; padding: 0; }
.site-nav li a { display: block; padding: .35rem .6rem; border-radius: 4px; color: #24292f; text-decoration: none; }
.site-nav li a:hover { background: #e8edf5; }
.site-nav li.active > a { background: #dce6f5; color: #1a4d8f; font-weight: 600; }
.page-toc:not(:empty) { margin-top: 1.25rem; padding-top: .75rem; border-top: 1px solid #e3e3e3; }
.page-toc .toc-title { font-weight: 600; color: #57606a; margin: 0 0 .4rem .6rem; font-size: .8rem;
  text-transform: uppercase; letter-spacing: .04em; }
.page-toc li a { padding: .2rem .6rem; font-size: .85rem; color: #57606a; }
.page-toc li.toc-h3 a { padding-left: 1.4rem; }
main.site-main { margin-left: var(--site-nav-width); flex: 1; min-width: 0; max-width: 62rem;
  padding: 1.5rem 2.5rem 3rem; box-sizing: border-box; overflow: visible; }
.page-header { margin: 0 0 1.25rem 0; padding-left: var(--jp-cell-padding, 5px); }
.page-title { font-size: 2rem; margin: .5rem 0 .25rem 0; }
.page-description { font-size: 1.1rem; color: #57606a; margin: 0; }
.page-footer { margin-top: 3rem; color: #8c959f; font-size: .8rem; }
.jp-RenderedHTMLCommon h2, .jp-RenderedHTMLCommon h3 { scroll-margin-top: calc(var(--site-header-height) + .5rem); }
.jp-OutputArea-output img { max-width: 100%; height: auto; }
@media (max-width: 52rem) {
  .site-nav { position: static; width: auto; border-right: 0; border-bottom: 1px solid #e3e3e3; }
  .site-body { flex-direction: column; }
  main.site-main { margin-left: 0; padding: 1rem; }
}
"""

def _page_file(src_rel:PurePosixPath, fm:dict) -> str:
    "Where a notebook's page goes, relative to the site root: nbdev's `output-file` (as Quarto), else NAME.html."
    name = fm.get('output-file') or src_rel.with_suffix('.html').name
    return str(src_rel.parent / name) if str(src_rel.parent) != '.' else name

def _anchor(text:str) -> str:
    return re.sub(r'\s+', '-', text.strip()) or 'top'

def _is_local(href:str) -> bool:
    u = urlsplit(href)
    return not (u.scheme or u.netloc or href.startswith(('#', '//')))

def _rewrite_links(soup, page_file:str, nb_pages:dict) -> list:
    "Links to notebooks -> links to their pages; returns the local targets for the link check."
    here = PurePosixPath(page_file).parent
    targets = []
    for a in soup.find_all(['a', 'img']):
        attr = 'href' if a.name == 'a' else 'src'
        href = a.get(attr)
        if not href or not _is_local(href) or href.startswith('data:'): continue
        u = urlsplit(href)
        tgt = PurePosixPath(os.path.normpath(str(here / u.path))) if u.path else None
        if tgt is not None and tgt.suffix == '.ipynb':
            new = nb_pages.get(str(tgt))
            if new is None: new = str(tgt.with_suffix('.html'))
            rel = os.path.relpath(new, str(here)) if str(here) != '.' else new
            a[attr] = urlunsplit(('', '', rel, u.query, u.fragment))
            tgt = PurePosixPath(new)
        if tgt is not None: targets.append((str(tgt), u.fragment))
    return targets

def _add_toc(soup):
    "Fill the sidebar's 'On this page' list from the page's level-2 and level-3 headings."
    box, main = soup.find(class_='page-toc'), soup.find('main')
    heads = [h for h in main.find_all(['h2', 'h3']) if h.get('id')] if main else []
    if not box or not heads: return
    t = soup.new_tag('p', attrs={'class': 'toc-title'}); t.string = 'On this page'
    ul = soup.new_tag('ul')
    for h in heads:
        li = soup.new_tag('li', attrs={'class': f'toc-{h.name}'})
        a = soup.new_tag('a', href='#' + h['id'])
        a.string = h.get_text(' ', strip=True).rstrip('#¶').strip()
        li.append(a); ul.append(li)
    box.append(t); box.append(ul)

def inline_code(escaped:str) -> Markup:
    "`code` spans of an HTML-escaped line -> <code> (the subtitle is a line of markdown, as Quarto renders it)."
    return Markup(re.sub(r'`([^`]+)`', r'<code>\1</code>', str(escaped)))

def make_exporter() -> HTMLExporter:
    "nbconvert's HTML exporter: the JupyterLab template inside the site's page frame, no prompts."
    ex = HTMLExporter(template_name='lab', extra_loaders=[DictLoader({'ewas_site.html.j2': PAGE_TEMPLATE})],
                      template_file='ewas_site.html.j2', exclude_input_prompt=True, exclude_output_prompt=True,
                      filters={'inline_code': inline_code})
    ex.register_preprocessor(TagRemovePreprocessor(remove_input_tags={'remove_input'}), enabled=True)
    return ex

def _sort_key(rel:PurePosixPath):
    return (len(rel.parts) > 1, rel.name != 'index.ipynb', str(rel))

def _render_pages(pages, proc, sources, runs, site, index, nb_pages, nbs, tmp) -> dict:
    "Write every page, the stylesheet and the notebooks' images into `tmp`; returns each page's local link targets."
    exporter, links = make_exporter(), {}
    for p in pages:
        run = runs.get(sources[p['src']].resolve())
        nb, fm = prepare_page(nbformat.read(proc/p['src'], as_version=4), run.outputs() if run else None)
        depth = len(PurePosixPath(p['file']).parts) - 1
        nb.metadata['title'] = p['title'] if p is index else f"{p['title']} – {site['title']}"
        desc = page_description(fm, nbformat.read(sources[p['src']], as_version=4))
        page = dict(file=p['file'], title=p['title'], description=desc, root='../' * depth,
                    anchor=_anchor(p['title']) + '-title', source=f"{nbs.name}/{p['src']}")
        mj = site.get('mathjax_src')
        page['mathjax_src'] = page['root'] + mj if mj and site.get('mathjax') == 'local' else mj
        html, _ = exporter.from_notebook_node(nb, resources={'site': site, 'page': page})
        soup = BeautifulSoup(html, 'html.parser')
        links[p['file']] = _rewrite_links(soup, p['file'], nb_pages)
        _add_toc(soup)
        dest = tmp/p['file']
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(str(soup), encoding='utf-8')
    (tmp/'site.css').write_text(SITE_CSS)
    (tmp/'.nojekyll').touch()
    for f in nbs.rglob('*'):  # images the notebooks link to
        rel = f.relative_to(nbs)
        if f.suffix.lower() in IMAGE_EXTS and not any(s.startswith(('.', '_')) for s in rel.parts):
            (tmp/rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, tmp/rel)
    return links

def build_site(out:Path|None=None, execute:str='auto', workers:int|None=None, mathjax_url:str|None=LOCAL,
               proc:Path|None=None, verbose:bool=True, strict:bool=True) -> dict:
    """Render the processed notebooks in `proc` (default: run nbdev's processing into _proc/) into a site in `out`.
    execute: 'auto' runs the notebooks saved without outputs, 'all' every notebook, 'none' uses saved outputs.
    strict: a notebook that fails to run stops the build (else its page shows the outputs up to the error).
    mathjax_url: LOCAL (default) copies the pinned MathJax into the site (see `site_mathjax`), a URL loads it from
    there (a CDN), None leaves formulas as TeX."""
    log = print if verbose else (lambda *a, **k: None)
    cfg = nbdev_config()
    nbs, out = Path(cfg.nbs_path), Path(out or cfg.doc_path)
    t0 = time.time()
    if proc is None:
        log('[docs] processing notebooks with nbdev (show_doc) -> _proc/')
        proc = process_notebooks()
    sources = {PurePosixPath(p.relative_to(nbs).as_posix()): p for p in site_notebooks(nbs)}
    rels = sorted((r for r in sources if (proc/r).exists()), key=_sort_key)
    if not rels: raise FileNotFoundError(f"no processed notebooks in {proc}")
    for r in sorted(set(sources) - set(rels)): log(f'[docs] warning: {nbs.name}/{r} was not processed: no page')
    def _has_outputs(p):
        return any(c.get('outputs') for c in nbformat.read(p, as_version=4).cells if c.cell_type == 'code')
    to_run = [sources[r] for r in rels if execute == 'all' or (execute == 'auto' and not _has_outputs(sources[r]))]
    runs = {}
    if to_run:
        log(f'[docs] executing {len(to_run)} notebook(s) in a Jupyter kernel for their outputs')
        t1 = time.time()
        runs = run_notebooks(to_run, workers=workers)
        failed = [r.error for r in runs.values() if not r.ok]
        if failed and strict:
            raise RuntimeError('notebook execution failed (fix it, or build from saved outputs with --exec none):\n'
                               + '\n'.join(failed))
        for e in failed: log(f'[docs] warning: {e}')
        log(f'[docs] executed in {time.time() - t1:.0f} s: '
            + ', '.join(f'{p.name} {r.seconds:.0f} s' for p, r in runs.items()))
    pages = []
    for r in rels:
        fm = front_matter(nbformat.read(proc/r, as_version=4))
        pages.append(dict(file=_page_file(r, fm), title=str(fm.get('title') or r.stem), src=r))
    nb_pages = {str(p['src']): p['file'] for p in pages}
    index = next((p for p in pages if p['file'] == 'index.html'), None)
    site = dict(title=(index or {}).get('title') or cfg.get('title') or cfg.lib_name,
                description=cfg.get('description', ''),
                pages=[dict(file=p['file'], title=p['title']) for p in pages])
    tmp = out.with_name(out.name + '.building')
    shutil.rmtree(tmp, ignore_errors=True); tmp.mkdir(parents=True)
    try:
        site['mathjax_src'], site['mathjax'] = site_mathjax(mathjax_url, tmp, log)
        links = _render_pages(pages, proc, sources, runs, site, index, nb_pages, nbs, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True); raise
    broken = sorted({f"{page} -> {t}" for page, ts in links.items() for t, _ in ts if not (tmp/t).is_file()})
    for b in broken: log(f'[docs] warning: broken link {b}')
    shutil.rmtree(out, ignore_errors=True); tmp.rename(out)
    log(f"[docs] wrote {len(pages)} pages to {_rel(out)}/ in {time.time() - t0:.0f} s: open {_rel(out / 'index.html')}")
    return dict(out=out, pages=[p['file'] for p in pages], sources=[str(p['src']) for p in pages], broken=broken,
                runs=runs, mathjax=site['mathjax'], mathjax_src=site['mathjax_src'])

def main(argv=None):
    ap = argparse.ArgumentParser(description='Build the documentation site (_docs/) from nbs/ without Quarto.')
    ap.add_argument('--exec', dest='execute', choices=['auto', 'all', 'none'], default='auto',
                    help='run notebooks for their outputs: auto = those saved without outputs (default)')
    ap.add_argument('--out', type=Path, default=None, help='output folder (default: doc_path, _docs/)')
    ap.add_argument('--workers', type=int, default=None, help='notebooks executed at once (default: 2)')
    ap.add_argument('--mathjax-url', default=LOCAL,
                    help=f"MathJax 3 script for the formulas: 'local' (default) copies MathJax {MATHJAX_VERSION} from the "
                         f"npm registry (cached in {cache_dir()}) into the site; a URL loads it from there, e.g. "
                         f"{MATHJAX_URL}; '' for none")
    ap.add_argument('--keep-going', action='store_true', help='build even if a notebook fails to run (warns)')
    a = ap.parse_args(argv)
    try: build_site(a.out, a.execute, a.workers, a.mathjax_url or None, strict=not a.keep_going)
    except (RuntimeError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0

if __name__ == '__main__': sys.exit(main())
