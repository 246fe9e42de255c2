"""Screenshots of the docs site, offline: builds _docs/ (tools/build_site.py, from the notebooks' saved outputs unless
told), serves it from 127.0.0.1 and shoots pages in headless Chromium in which every host but 127.0.0.1 is
unresolvable (the browser tests' flags), so what MathJax typesets comes from the site's own copy.

Writes to results/docs/ (PNG, 256 colours):
  docs_core_formulas.png    the core page (nbs/00_core.ipynb) at its first formulas, typeset
  docs_evaluate_top.png     the top of the evaluate page: title and whole subtitle
  docs_core_cdn_offline.png with --cdn-too: the same core page built with the CDN URL (the old default): raw TeX offline
and checks each shot: formulas typeset with no MathJax error and no raw `$...$` left, every resource from 127.0.0.1.

Usage: python tools/screenshot_docs.py [--exec none|auto|all] [--no-build] [--cdn-too] [--out DIR]"""
from __future__ import annotations
import argparse, functools, http.server, re, shutil, subprocess, sys, tempfile, threading, time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import build_site  # noqa: E402

# As tests/conftest.py: no background services, every host but loopback fails at once.
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--disable-dev-shm-usage', '--disable-extensions', '--window-size=1280,900', '--hide-scrollbars',
                  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1']
TYPESET_JS = """const done = arguments[arguments.length - 1];
(function wait() { if (window.MathJax && MathJax.startup && MathJax.startup.promise)
  MathJax.startup.promise.then(() => done(true), e => done(String(e))); else setTimeout(wait, 100); })();"""
PROSE_TEXT_JS = """
const parts = [], w = document.createTreeWalker(document.querySelector('main'), NodeFilter.SHOW_TEXT);
while (w.nextNode()) { const n = w.currentNode;
  if (!n.parentElement.closest('pre, code, script, style, textarea, mjx-container')) parts.push(n.nodeValue); }
return parts.join(' ');"""
RAW_TEX = re.compile(r'\$[^$\s][^$]*\$')

@contextmanager
def serve(folder:Path):
    "`folder` over HTTP on a free loopback port."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(folder)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True); t.start()
    try: yield f'http://127.0.0.1:{httpd.server_port}/'
    finally: httpd.shutdown(); httpd.server_close(); t.join(5)

@contextmanager
def chromium():
    "Headless Chromium through Selenium (tools/ensure_chromium.sh installs it when missing)."
    if not (shutil.which('chromium') and shutil.which('chromedriver')):
        r = subprocess.run(['bash', str(ROOT/'tools'/'ensure_chromium.sh')], capture_output=True, text=True)
        if r.returncode: raise SystemExit(f'error: {(r.stdout + r.stderr).strip()}')
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix='ewas-chromium-')
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which('chromium')
    for f in CHROMIUM_FLAGS + [f'--user-data-dir={profile}']: opts.add_argument(f)
    opts.page_load_strategy = 'eager'
    drv = webdriver.Chrome(options=opts, service=Service(shutil.which('chromedriver'), log_output=subprocess.DEVNULL))
    drv.set_page_load_timeout(60); drv.set_script_timeout(30)
    try: yield drv
    finally:
        drv.quit(); shutil.rmtree(profile, ignore_errors=True)

def save_png(drv, path:Path) -> int:
    "Screenshot -> a 256-colour PNG (a few tens of KB); returns its size in bytes."
    from io import BytesIO
    from PIL import Image
    im = Image.open(BytesIO(drv.get_screenshot_as_png())).convert('RGB')
    im.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    return path.stat().st_size

def shoot_core(drv, base:str, path:Path, typeset:bool=True) -> str:
    "The core page scrolled to its first formulas; checks they are typeset (or, typeset=False, that TeX stays raw)."
    drv.get(base + 'core.html')
    if typeset:
        ok = drv.execute_async_script(TYPESET_JS)
        if ok is not True: raise SystemExit(f'error: MathJax did not typeset core.html: {ok}')
        n = drv.execute_script("return document.querySelectorAll('main mjx-container').length")
        errors = drv.execute_script("return document.querySelectorAll('mjx-merror').length")
        raw = RAW_TEX.findall(drv.execute_script(PROSE_TEXT_JS))
        res = drv.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        away = [u for u in res if not u.startswith(base)]
        if not n or errors or raw or away:
            raise SystemExit(f'error: core.html: {n} formulas, {errors} errors, raw TeX {raw[:3]}, not local {away[:3]}')
        drv.execute_script("const m = document.querySelector('main mjx-container').closest('.jp-Cell');"
                           "window.scrollTo(0, m.getBoundingClientRect().top + window.scrollY - 60);")
        what = f'{n} formulas typeset, no raw TeX, {len(res)} resources all from 127.0.0.1'
    else:
        time.sleep(3)  # (the CDN script fails at once: its host does not resolve)
        raw = RAW_TEX.findall(drv.execute_script(PROSE_TEXT_JS))
        drv.execute_script("const m = Array.from(document.querySelectorAll('main .jp-MarkdownCell'))"
                           ".find(c => c.textContent.includes('\\\\mathbb'));"
                           "window.scrollTo(0, m.getBoundingClientRect().top + window.scrollY - 60);")
        what = f'{len(raw)} formulas left as raw TeX'
    time.sleep(0.5)
    return f'{path.name} ({save_png(drv, path) // 1024} KB): {what}'

def shoot_evaluate(drv, base:str, path:Path) -> str:
    "The top of the evaluate page; checks the subtitle is the notebook's whole summary."
    import nbformat
    drv.get(base + 'evaluate.html')
    drv.execute_async_script(TYPESET_JS)
    got = drv.execute_script("return document.querySelector('.page-description').innerText").strip()
    want = build_site.notebook_summary(nbformat.read(ROOT/'nbs'/'06_evaluate.ipynb', as_version=4)).replace('`', '')
    if got != want: raise SystemExit(f'error: evaluate.html subtitle {got!r}, summary {want!r}')
    return f'{path.name} ({save_png(drv, path) // 1024} KB): subtitle whole ({len(got)} characters)'

def main(argv=None):
    ap = argparse.ArgumentParser(description='Screenshots of the docs site, offline, into results/docs/.')
    ap.add_argument('--exec', dest='execute', choices=['none', 'auto', 'all'], default='none',
                    help="build_site's --exec (default none: the notebooks' saved outputs; cheap)")
    ap.add_argument('--no-build', action='store_true', help='shoot the _docs/ already built')
    ap.add_argument('--cdn-too', action='store_true', help='also shoot the core page built with the CDN URL, offline')
    ap.add_argument('--out', type=Path, default=ROOT/'results'/'docs', help='where the PNGs go')
    a = ap.parse_args(argv)
    docs = Path(build_site.nbdev_config().doc_path)
    if not a.no_build:
        r = build_site.build_site(execute=a.execute)
        if r['mathjax'] != 'local': raise SystemExit(f"error: pages load MathJax from {r['mathjax_src']}, not the site")
    a.out.mkdir(parents=True, exist_ok=True)
    said = []
    with chromium() as drv:
        with serve(docs) as base:
            said.append(shoot_core(drv, base, a.out/'docs_core_formulas.png'))
            said.append(shoot_evaluate(drv, base, a.out/'docs_evaluate_top.png'))
        if a.cdn_too:
            with tempfile.TemporaryDirectory() as d:
                build_site.build_site(Path(d)/'site', execute='none', mathjax_url=build_site.MATHJAX_URL,
                                      proc=ROOT/'_proc', verbose=False)
                with serve(Path(d)/'site') as base:
                    said.append(shoot_core(drv, base, a.out/'docs_core_cdn_offline.png', typeset=False))
    for s in said: print(f'[screenshots] {s}')
    return 0

if __name__ == '__main__': sys.exit(main())
