"""Shared fixtures of the browser tests: one headless Chromium (Debian's chromium + chromedriver, driven by Selenium)
and the folder for their screenshots."""
import os, shutil, subprocess, tempfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Chromium on a machine without network: no background services, every host but loopback fails at once.
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--disable-dev-shm-usage', '--disable-extensions', '--window-size=1280,1000',
                  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1']

def _find_chromium():
    chrome = shutil.which('chromium') or shutil.which('chromium-browser')
    driver = shutil.which('chromedriver') or ('/usr/bin/chromedriver' if Path('/usr/bin/chromedriver').exists() else None)
    return chrome, driver

@pytest.fixture(scope='session')
def browser():
    "A headless Chromium WebDriver; installs Chromium with tools/ensure_chromium.sh when missing, else skips."
    chrome, driver = _find_chromium()
    if not (chrome and driver):
        r = subprocess.run(['bash', str(ROOT/'tools'/'ensure_chromium.sh')], capture_output=True, text=True)
        chrome, driver = _find_chromium()
        if r.returncode or not (chrome and driver):
            why = (r.stdout + r.stderr).strip().splitlines()
            pytest.skip(f"headless Chromium is not available here: {why[-1] if why else 'not installed'}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix='ewas-chromium-')
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for f in CHROMIUM_FLAGS + [f'--user-data-dir={profile}']: opts.add_argument(f)
    opts.page_load_strategy = 'eager'  # tests wait for what they check; no page waits on a (blocked) CDN script
    drv = webdriver.Chrome(options=opts, service=Service(driver, log_output=subprocess.DEVNULL))
    drv.set_page_load_timeout(60)
    try: yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)

@pytest.fixture(scope='session')
def screenshot_dir():
    "Where the browser tests save screenshots: tmp/screenshots/ (git-ignored), or $EWAS_SCREENSHOT_DIR."
    d = Path(os.environ.get('EWAS_SCREENSHOT_DIR') or ROOT/'tmp'/'screenshots')
    d.mkdir(parents=True, exist_ok=True)
    return d


# Shared by tests/test_attacks.py and tests/test_evaluate.py: digits at 16x16 and two small models trained on them.
@pytest.fixture(scope="session")
def digits16():
    from ewas_nb.data import load_digits_tensors
    xtr, ytr = load_digits_tensors(train=True, size=16, channels=1)
    xte, yte = load_digits_tensors(train=False, size=16, channels=1)
    return xtr.float() / 255, ytr, xte.float() / 255, yte


@pytest.fixture(scope="session")
def digits_models(digits16):
    "A plain and an EWAS small CNN, each adversarially trained for 3 quick epochs at eps 24/255."
    import torch
    from ewas_nb.core import add_ewas
    from ewas_nb.models import small_cnn
    from ewas_nb.train import quick_train
    xtr, ytr, _, _ = digits16
    torch.manual_seed(0); plain = quick_train(small_cnn(), xtr[:600], ytr[:600], epochs=3, adv_eps=24 / 255)
    torch.manual_seed(0); ewas = quick_train(add_ewas(small_cnn(), 'block2', input_size=(1, 16, 16)), xtr[:600], ytr[:600],
                                             epochs=3, adv_eps=24 / 255)
    return dict(plain=plain, ewas=ewas)
