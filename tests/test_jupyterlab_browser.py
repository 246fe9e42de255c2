"""JupyterLab as a person uses it: `bash tools/lab` on a copy of nbs/ (free loopback port, token), headless Chromium
opens 01_models.ipynb, Run > Run All Cells, waits for the kernel to go idle, and checks that every code cell ran,
no cell shows an error and a result rendered. Screenshot: tmp/screenshots/jupyterlab_01_models.png. (01_models runs
in seconds; every notebook's cells run in a real kernel in tests/test_notebooks_kernel.py: here the browser path.) The server is
shut down through its API and no process of it (kernels included) is left behind."""
import json, os, shutil, signal, socket, subprocess, time, urllib.request
from pathlib import Path
import nbformat, pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = '01_models.ipynb'
SHOT = 'jupyterlab_' + NOTEBOOK.removesuffix('.ipynb')

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _get(url, timeout=5, method='GET'):
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as r: return r.status, r.read()

def _wait(what, cond, timeout, proc=None, log=None, step=0.25):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f'tools/lab exited ({proc.returncode}) while waiting for {what}:\n{_tail(log)}')
        try:
            v = cond()
            if v: return v
        except Exception: pass
        time.sleep(step)
    raise AssertionError(f'timed out after {timeout} s waiting for {what}' + (f':\n{_tail(log)}' if log else ''))

def _tail(log, n=30):
    return '\n'.join(Path(log).read_text(errors='replace').splitlines()[-n:]) if log and Path(log).exists() else ''

@pytest.fixture
def lab(tmp_path):
    "`bash tools/lab` serving a copy of nbs/ (files in nbs/ are never written); stopped with all its processes."
    import psutil
    root = tmp_path/'nbs'
    shutil.copytree(ROOT/'nbs', root, ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_proc'))
    settings = tmp_path/'lab-settings'/'@jupyterlab'/'apputils-extension'
    settings.mkdir(parents=True)  # no "get Jupyter news?" prompt over the page (nothing is fetched either way)
    (settings/'notification.jupyterlab-settings').write_text(json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))
    port, token, log = _free_port(), os.urandom(16).hex(), tmp_path/'lab.log'
    env = dict(os.environ, EWAS_LAB_PORT=str(port), EWAS_LAB_ROOT=str(root), JUPYTER_TOKEN=token,
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path/'lab-settings'), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path/'ws'),
               JUPYTER_RUNTIME_DIR=str(tmp_path/'runtime'))
    with open(log, 'w') as f:
        proc = subprocess.Popen(['bash', str(ROOT/'tools'/'lab')], cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    base = f'http://127.0.0.1:{port}'
    procs = []
    try:
        _wait('the server', lambda: _get(f'{base}/api/status?token={token}')[0] == 200, 120, proc, log)
        yield dict(base=base, token=token, root=root, log=log, proc=proc)
        # kernels run in sessions of their own: remember every descendant before asking the server to stop
        procs = psutil.Process(proc.pid).children(recursive=True) + [psutil.Process(proc.pid)]
        try: _get(f'{base}/api/shutdown?token={token}', method='POST')
        except Exception: pass
        try: proc.wait(20)
        except subprocess.TimeoutExpired: pass
    finally:
        if proc.poll() is None:
            try: os.killpg(proc.pid, signal.SIGTERM); proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired): os.killpg(proc.pid, signal.SIGKILL)
        _, alive = psutil.wait_procs([p for p in procs if p.is_running()], timeout=10)
        for p in alive: p.kill()
        proc.wait(10)
    left = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f'processes left behind by JupyterLab: {[(p.pid, p.name()) for p in left]}'

def test_run_all_cells_in_jupyterlab(browser, lab, screenshot_dir):
    base, token = lab['base'], lab['token']
    status, body = _get(f"{base}/api/kernelspecs?token={token}")
    assert json.loads(body)['default'] == 'ewas_nb', 'the default kernel is not the project kernel'
    browser.get(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
    js = lambda s, *a: browser.execute_script(s, *a)
    n_code = sum(c.cell_type == 'code' for c in nbformat.read(lab['root']/NOTEBOOK, as_version=4).cells)
    _wait('the notebook', lambda: js("return document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell').length") == n_code, 90)
    kernel_idle = ("const t = (Array.from(document.querySelectorAll('.jp-StatusBar-TextItem')).map(e => e.textContent.trim())"
                   ".find(t => / \\| /.test(t)) || ''); return !t.startsWith('No Kernel') && t.endsWith('| Idle') && t")
    kernel = _wait('the kernel to start', lambda: js(kernel_idle), 90)
    # Run > Run All Cells, from the menu bar as a person would
    run = [m for m in browser.find_elements('css selector', '.lm-MenuBar-item') if m.text.strip() == 'Run']
    assert run, 'no Run menu'
    run[0].click()
    item = _wait('the Run All Cells menu item', lambda: [e for e in browser.find_elements(
        'css selector', '.lm-Menu-item') if e.text.strip().startswith('Run All Cells')][0], 10)
    item.click()
    prompts = ("return Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt'))"
               ".map(e => e.textContent.trim())")
    dialog = "return Array.from(document.querySelectorAll('.jp-Dialog')).map(e => e.textContent.trim()).join(' | ')"
    _wait('the cells to start', lambda: any(p not in ('[ ]:', '') for p in js(prompts)) or js(dialog), 30)
    assert not js(dialog), f'JupyterLab asks: {js(dialog)}'
    errors_js = """return Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output'))
        .filter(e => e.dataset.mimeType == 'application/vnd.jupyter.stderr' || e.classList.contains('jp-mod-error'))
        .map(e => e.textContent).filter(t => /Traceback|Error:|Exception/.test(t)).map(t => t.slice(0, 800))"""
    def done():  # idle, nothing queued ([*]), and every cell numbered, or Run All stopped at an error
        ps = js(prompts)
        return (js(kernel_idle) and not any('*' in p for p in ps)
                and (all(p.startswith('[') and p[1:-2].strip().isdigit() for p in ps) or js(errors_js)))
    t0 = time.time()
    try: _wait('every code cell to run and the kernel to be idle', done, 150, step=0.5)
    except AssertionError:
        browser.save_screenshot(str(screenshot_dir/f'{SHOT}_timeout.png')); raise
    run_s = time.time() - t0
    errors = js(errors_js)
    if errors:
        js("const e = document.querySelector('.jp-NotebookPanel .jp-OutputArea-output"
           "[data-mime-type=\"application/vnd.jupyter.stderr\"]'); if (e) e.scrollIntoView({block: 'center'})")
        browser.save_screenshot(str(screenshot_dir/f'{SHOT}_error.png'))
    assert not errors, f'{NOTEBOOK} shows errors in JupyterLab after Run All:\n' + '\n---\n'.join(errors)
    assert all(p[1:-2].strip().isdigit() for p in js(prompts)), f'cells left unexecuted: {js(prompts)}'
    rich = js("return document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output img,"
              " .jp-NotebookPanel .jp-OutputArea-output table').length")
    results = js("return document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-executeResult').length")
    assert rich or results, 'no output rendered (no figure, table or result)'
    last = browser.find_elements('css selector', '.jp-NotebookPanel .jp-OutputArea-output img, '
                                 '.jp-NotebookPanel .jp-OutputArea-output table, .jp-NotebookPanel .jp-OutputArea-executeResult')
    js("arguments[0].scrollIntoView({block: 'center'})", last[-1])
    time.sleep(0.3)
    browser.save_screenshot(str(screenshot_dir/f'{SHOT}.png'))
    print(f'{NOTEBOOK}: {n_code} code cells ran in JupyterLab ({kernel}) in {run_s:.0f} s; '
          f'figures/tables: {rich}, results: {results}')
