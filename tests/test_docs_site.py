"""The documentation site in a real browser. Builds _docs/ the way `bash tools/docs` does without Quarto
(tools/build_site.py: nbdev's processed notebooks -> nbconvert, with the outputs saved in the notebooks; one saved
without outputs is run in a kernel first), serves it from 127.0.0.1 and walks it in headless Chromium: the front page,
the `EWAS` entry of the API reference, a rendered figure, every page through the navigation with no broken local
link, and the formulas typeset by the copy of MathJax in the site with no request leaving 127.0.0.1. Screenshots:
tmp/screenshots/docs_*.png. EWAS_DOCS_EXEC=all runs every notebook for the site instead (as `--exec all`)."""
import functools, http.server, os, re, subprocess, sys, threading, time, urllib.error, urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urlsplit
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import build_site  # noqa: E402

EXEC = os.environ.get('EWAS_DOCS_EXEC', 'auto')

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requested: list = []  # the paths asked for, in order
    def log_message(self, *args): pass
    def send_head(self):
        type(self).requested.append(urlsplit(self.path).path)
        return super().send_head()

@pytest.fixture(scope='module')
def site():
    """Build the site once (a notebook saved without outputs is run, and that run shared with test_notebooks_kernel.py
    within one pytest process; a notebook that fails is that test's failure: here its page shows the outputs up to the error)."""
    return build_site.build_site(execute=EXEC, verbose=False, strict=False)

@pytest.fixture(scope='module')
def server(site):
    "The built site over HTTP on a free loopback port; shut down afterwards."
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(site['out'])))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try: yield f'http://127.0.0.1:{httpd.server_port}/'
    finally:
        httpd.shutdown(); httpd.server_close(); t.join(5)

def _wait(drv, cond, timeout=20, what='condition'):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            v = cond()
            if v: return v
        except Exception: pass
        time.sleep(0.1)
    raise AssertionError(f'timed out after {timeout} s waiting for {what} on {drv.current_url}')

def _open(drv, url):
    "Load `url` and wait until the page frame (title and sidebar) is there."
    drv.get(url)
    _wait(drv, lambda: drv.execute_script(
        "return document.readyState != 'loading' && document.querySelector('h1.page-title')"
        " && document.querySelector('nav.site-nav a')"), what='the page frame')

def _status(url) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r: return r.status
    except urllib.error.HTTPError as e: return e.code

def _page_of(site, notebook):
    return dict(zip(site['sources'], site['pages']))[notebook]

def test_links_and_directives():
    "Notebook links become page links (nbdev's output-file names); Quarto directives hide inputs, outputs, cells."
    from bs4 import BeautifulSoup
    soup = BeautifulSoup('<a href="00_core.ipynb#EWAS">a</a><a href="sub/x.ipynb">b</a><a href="https://x.org/y.ipynb">c</a>'
                         '<img src="images/f.png">', 'html.parser')
    targets = build_site._rewrite_links(soup, 'core.html', {'00_core.ipynb': 'core.html'})
    assert [a['href'] for a in soup('a')] == ['core.html#EWAS', 'sub/x.html', 'https://x.org/y.ipynb']
    assert targets == [('core.html', 'EWAS'), ('sub/x.html', ''), ('images/f.png', '')]
    assert build_site.split_directives('#| echo: false\n#| output: asis\nshow_doc(f)') == (
        {'echo': 'false', 'output': 'asis'}, 'show_doc(f)')
    from nbformat.v4 import new_code_cell, new_notebook, new_raw_cell
    nb = new_notebook(cells=[new_raw_cell('---\ntitle: T\noutput-file: t.html\n---'),
                             new_code_cell('#| echo: false\nshow_doc(f)', outputs=[]),
                             new_code_cell('#| include: false\nx = 1'), new_code_cell('#| output: false\n1 + 1')])
    nb.cells[1].outputs = [_output('shown')]
    nb.cells[3].outputs = [_output('hidden')]
    page, fm = build_site.prepare_page(nb)
    assert fm == {'title': 'T', 'output-file': 't.html'}
    assert [(c.source, c.metadata['tags'], len(c.outputs)) for c in page.cells] == [
        ('show_doc(f)', ['remove_input'], 1), ('1 + 1', [], 0)]

def _output(text):
    from nbformat.v4 import new_output
    return new_output('execute_result', data={'text/plain': text}, execution_count=1)

def test_build(site):
    "Every notebook of nbs/ became a page; the build found no broken local link."
    nbs = [p.relative_to(ROOT/'nbs').as_posix() for p in build_site.site_notebooks()]
    assert sorted(site['sources']) == sorted(nbs)
    assert site['pages'][0] == 'index.html' and (site['out']/'index.html').is_file()
    assert not site['broken'], 'broken links: ' + ', '.join(site['broken'])

def test_front_page(browser, server, site, screenshot_dir):
    _open(browser, server)
    title = browser.find_element('css selector', 'h1.page-title').text
    assert title.strip(), 'the front page has no title'
    nav = [a.get_attribute('href') for a in browser.find_elements('css selector', 'nav.site-nav > ul a')]
    assert [urlsplit(h).path.lstrip('/') for h in nav] == site['pages'], 'the sidebar does not list every page in order'
    assert browser.find_elements('css selector', 'main .jp-MarkdownCell'), 'the front page shows no prose'
    browser.save_screenshot(str(screenshot_dir/'docs_index.png'))

def test_api_entry(browser, server, site, screenshot_dir):
    "The API reference of the EWAS layer (show_doc of `EWAS` in 00_core) is on the core page."
    _open(browser, server + _page_of(site, '00_core.ipynb'))
    head = browser.find_element('id', 'EWAS')
    assert head.tag_name in ('h2', 'h3', 'h4') and head.text.strip().rstrip('#¶').strip() == 'EWAS'
    browser.execute_script("arguments[0].scrollIntoView()", head)
    sig = browser.execute_script(
        "const h = arguments[0]; const out = h.closest('.jp-OutputArea-output') || h.parentElement;"
        "return Array.from(out.querySelectorAll('pre')).map(p => p.innerText).join('\\n');", head)
    assert 'EWAS(' in sig and 'num_classes' in sig, f'no signature under the EWAS heading: {sig!r}'
    assert head.is_displayed()
    browser.save_screenshot(str(screenshot_dir/'docs_core_ewas.png'))

def test_figure(browser, server, site, screenshot_dir):
    "At least one figure (a PNG output) is on the site and the browser decodes it."
    for page in site['pages']:
        if '<img' not in (site['out']/page).read_text(): continue
        _open(browser, server + page)
        imgs = browser.find_elements('css selector', 'main img')
        _wait(browser, lambda: all(browser.execute_script('return arguments[0].complete', i) for i in imgs), what='images')
        shown = [i for i in imgs if browser.execute_script('return arguments[0].naturalWidth', i) > 0]
        if shown:
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", shown[0])
            browser.save_screenshot(str(screenshot_dir/'docs_figure.png'))
            return
    pytest.fail('no page of the site shows a figure (<img> with a PNG output); pages: ' + ', '.join(site['pages']))

def test_navigation_and_links(browser, server, site):
    "Clicking each sidebar entry opens its page; every local link of every page answers 200 and its anchor exists."
    _open(browser, server)
    n = len(browser.find_elements('css selector', 'nav.site-nav > ul a'))
    for k in range(n):
        a = browser.find_elements('css selector', 'nav.site-nav > ul a')[k]
        href, label = a.get_attribute('href'), a.text
        a.click()
        _wait(browser, lambda: browser.current_url == href, what=f'the page of {label!r}')
        _open(browser, href)  # (already there: waits for the frame)
        assert browser.find_element('css selector', 'h1.page-title').text.strip() == label.strip()
        active = browser.find_element('css selector', 'nav.site-nav li.active a').get_attribute('href')
        assert active == href, f'{href}: sidebar marks {active} as the current page'
    todo, seen, status, ids, wanted, bad = [server + 'index.html'], set(), {}, {}, [], []
    while todo:
        url = todo.pop()
        if url in seen: continue
        seen.add(url)
        _open(browser, url)
        ids[url] = set(browser.execute_script("return Array.from(document.querySelectorAll('[id]')).map(e => e.id)"))
        for h in browser.execute_script("return Array.from(document.querySelectorAll('a[href], img[src]'))"
                                        ".map(e => e.href || e.src)"):
            if not h.startswith(server): continue
            page, frag = urldefrag(h)
            if page not in status: status[page] = _status(page)
            if status[page] != 200: bad.append(f'{url} -> {h}: HTTP {status[page]}')
            elif page.endswith('.html'):
                todo.append(page)
                if frag: wanted.append((url, page, frag))
    bad += [f'{src} -> {page}#{frag}: no such anchor' for src, page, frag in wanted if frag not in ids[page]]
    assert not bad, 'broken links:\n' + '\n'.join(bad)
    assert {urlsplit(u).path.lstrip('/') for u in seen} == set(site['pages']), 'pages not reachable by links'

def test_docs_command_help():
    "`bash tools/docs --help` answers (it sources tools/env.sh; nbdev-docs where Quarto exists, else this builder)."
    r = subprocess.run(['bash', str(ROOT/'tools'/'docs'), '--help'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert '--exec' in r.stdout or 'nbdev' in r.stdout

def test_page_description():
    "A `> summary` over several lines is the page's whole subtitle (nbdev's front matter keeps its first line only)."
    from fastcore.nbio import md_frontmatter
    from nbformat.v4 import new_markdown_cell, new_notebook
    src = '# T\n> one line\n> and the next, `code`.\n>\n> not the summary\n\nprose'
    assert md_frontmatter(src)['description'] == 'one line'  # the cause: the rest is dropped with the title cell
    nb = new_notebook(cells=[new_markdown_cell('intro'), new_markdown_cell(src)])
    assert build_site.notebook_summary(nb) == 'one line and the next, `code`.'
    assert build_site.page_description({'description': 'one line'}, nb) == 'one line and the next, `code`.'
    assert build_site.page_description({'description': 'from YAML'}, nb) == 'from YAML'  # front matter given: kept
    assert build_site.page_description({}, nb) == ''
    assert build_site.inline_code('a `b` &lt;c&gt;') == 'a <code>b</code> &lt;c&gt;'

def test_subtitles_whole(site):
    "Every page's subtitle is its notebook's whole summary (06_evaluate's and others' span two lines)."
    import nbformat
    from bs4 import BeautifulSoup
    for src, page in zip(site['sources'], site['pages']):
        want = build_site.notebook_summary(nbformat.read(ROOT/'nbs'/src, as_version=4)).replace('`', '')
        got = BeautifulSoup((site['out']/page).read_text(), 'html.parser').find(class_='page-description')
        assert (got.get_text() if got else '') == want, f'{page}: subtitle {got!r}, summary {want!r}'

def test_mathjax_in_site(site):
    "Pages load the pinned MathJax copied into the site (a relative URL), never a CDN; the tarball's integrity is pinned."
    if site['mathjax'] == 'cdn': pytest.skip('MathJax could not be fetched (npm or registry unreachable, no cache): CDN')
    assert site['mathjax'] == 'local' and site['mathjax_src'] == 'mathjax/tex-chtml.js'
    out = site['out']
    assert (out/'mathjax'/'tex-chtml.js').is_file() and (out/'mathjax'/'LICENSE').is_file()
    assert list((out/'mathjax'/'output'/'chtml'/'fonts'/'woff-v2').glob('MathJax_Main-Regular.woff'))
    tgz = build_site.cache_dir()/f'mathjax-{build_site.MATHJAX_VERSION}.tgz'
    assert build_site.npm_integrity(tgz) == build_site.MATHJAX_INTEGRITY
    from bs4 import BeautifulSoup
    for page in site['pages']:
        soup = BeautifulSoup((out/page).read_text(), 'html.parser')
        srcs = [t['src'] for t in soup.find_all('script', src=True)] + [t['href'] for t in soup.find_all('link', href=True)]
        assert all(build_site._is_local(u) for u in srcs), f'{page} loads from elsewhere: {srcs}'
        mj = soup.find('script', id='MathJax-script')['src']
        assert (out/page).parent.joinpath(mj).resolve() == (out/'mathjax'/'tex-chtml.js').resolve(), (page, mj)

def test_mathjax_fallback(monkeypatch, tmp_path):
    "Neither fetchable nor cached: one line says so and pages load the CDN; a URL given is used as is; None: no MathJax."
    def fail(*a, **k): raise RuntimeError('npm is not on PATH')
    monkeypatch.setattr(build_site, 'fetch_mathjax', fail)
    said = []
    assert build_site.site_mathjax(build_site.LOCAL, tmp_path, said.append) == (build_site.MATHJAX_URL, 'cdn')
    assert len(said) == 1 and 'npm is not on PATH' in said[0] and build_site.MATHJAX_URL in said[0]
    assert not (tmp_path/'mathjax').exists()
    assert build_site.site_mathjax('https://x.org/mj.js', tmp_path, said.append) == ('https://x.org/mj.js', 'url')
    assert build_site.site_mathjax(None, tmp_path, said.append) == (None, 'none') and len(said) == 1

# Text of the page that is neither code nor typeset math: where raw TeX would show.
PROSE_TEXT_JS = """
const root = document.querySelector('main'), parts = [];
const w = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
while (w.nextNode()) { const n = w.currentNode;
  if (!n.parentElement.closest('pre, code, script, style, textarea, mjx-container')) parts.push(n.nodeValue); }
return parts.join(' ');"""
TYPESET_JS = """const done = arguments[arguments.length - 1];
(function wait() { if (window.MathJax && MathJax.startup && MathJax.startup.promise)
  MathJax.startup.promise.then(() => done(true), e => done(String(e))); else setTimeout(wait, 100); })();"""
RAW_TEX = re.compile(r'\$[^$\s][^$]*\$|\\\(|\\\[')

def _typeset(drv):
    "Wait for MathJax to finish the page; returns (number of formulas, errors, prose text)."
    drv.set_script_timeout(30)
    assert drv.execute_async_script(TYPESET_JS) is True, 'MathJax did not finish'
    return (drv.execute_script("return document.querySelectorAll('main mjx-container').length"),
            drv.execute_script("return Array.from(document.querySelectorAll('mjx-merror')).map(e => e.textContent)"),
            drv.execute_script(PROSE_TEXT_JS))

def test_formulas_offline(browser, server, site, screenshot_dir):
    """The core page's formulas ($z \\odot m$, ...) are typeset by the site's MathJax, with every host but 127.0.0.1
    unresolvable (conftest's Chromium flags): no raw TeX left, no MathJax error, every resource from the site."""
    if site['mathjax'] != 'local': pytest.skip(f"pages load MathJax from {site['mathjax_src']!r}, not from the site")
    _QuietHandler.requested.clear()
    _open(browser, server + _page_of(site, '00_core.ipynb'))
    n, errors, text = _typeset(browser)
    assert n >= 10 and not errors, (n, errors)
    assert not RAW_TEX.findall(text), f'raw TeX on the page: {RAW_TEX.findall(text)[:5]}'
    assert '/mathjax/tex-chtml.js' in _QuietHandler.requested
    assert any(p.endswith('.woff') for p in _QuietHandler.requested), 'no MathJax font was loaded from the site'
    res = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert res and all(u.startswith(server) for u in res), [u for u in res if not u.startswith(server)]
    browser.save_screenshot(str(screenshot_dir/'docs_core_formulas.png'))
    for page in site['pages']:  # and on every page: no TeX left raw, no MathJax error
        _open(browser, server + page)
        n, errors, text = _typeset(browser)
        assert not errors and not RAW_TEX.findall(text), (page, errors, RAW_TEX.findall(text)[:5])

def test_mathjax_cache_and_copy(monkeypatch, tmp_path):
    "A cached tarball is used only when its integrity is the pinned one; only MATHJAX_FILES are copied, under es5/'s paths."
    import io, tarfile
    tgz = tmp_path/'npm'/f'mathjax-{build_site.MATHJAX_VERSION}.tgz'
    tgz.parent.mkdir()
    with tarfile.open(tgz, 'w:gz') as tf:
        for name in ['package/es5/tex-chtml.js', 'package/es5/output/chtml/fonts/woff-v2/MathJax_Zero.woff',
                     'package/es5/tex-svg.js', 'package/es5/sre/sre.js', 'package/LICENSE']:
            ti = tarfile.TarInfo(name); ti.size = 1; tf.addfile(ti, io.BytesIO(b'x'))
    monkeypatch.setenv('EWAS_NB_CACHE', str(tmp_path))
    monkeypatch.setattr(build_site.shutil, 'which', lambda *a: None)  # no npm: the cache must do, and this one is wrong
    with pytest.raises(RuntimeError, match='npm is not on PATH'): build_site.fetch_mathjax()
    monkeypatch.setattr(build_site, 'MATHJAX_INTEGRITY', build_site.npm_integrity(tgz))
    assert build_site.fetch_mathjax() == tgz
    script = build_site.copy_mathjax(tgz, tmp_path/'site'/'mathjax')
    got = sorted(p.relative_to(tmp_path/'site'/'mathjax').as_posix() for p in (tmp_path/'site').rglob('*') if p.is_file())
    assert script.name == 'tex-chtml.js' and got == ['LICENSE', 'output/chtml/fonts/woff-v2/MathJax_Zero.woff', 'tex-chtml.js']
