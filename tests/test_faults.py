"""Fault injection: what survives when a run is cut off or its storage fails, comparing file hashes before and after.
Kills, signals and two writers hit the real console scripts in fresh processes; full and read-only file systems and
corrupt images, where the fault is in the files, run the same scripts in this process (`catalogue.run_script`: seconds
of imports less), as do the runs the faults start from.

  kill -9 during checkpoint writes ..... the last complete checkpoint loads; the next writer removes the partial file
  SIGINT mid-epoch (ewas-train) ........ status 130, one line with what was kept and the command that resumes it
  SIGTERM mid-evaluation (ewas-eval) ... status 143, the same; the resumed report equals an uninterrupted one
  ENOSPC on a small tmpfs .............. one line naming the file and the cause, earlier files byte-identical, no partial file
  read-only file system ................ refused before any work, one line
  a corrupt image ...................... every bad file named in one line, nothing written; --skip-bad-images trains
  two writers on one directory ......... the second is refused with one line; the first finishes unharmed
"""
import hashlib, os, re, shlex, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from ewas_nb.runs import load_checkpoint, run_lock
from catalogue import run_script

BIN = Path(sys.executable).parent
FOLDER = '--size 8 --width 0.0625 --batch 8 --steps 1 --val-n 4 --val-steps 1 --quiet --threads 1 --epochs 1'.split()
TINY = ('--size 8 --width 0.0625 --batch 64 --steps 1 --train-subset 512 --val-n 32 --val-steps 1 --quiet --threads 1').split()


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    "The runs in this process keep their data caches under tmp_path, as the fresh processes do (`env`)."
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))


@pytest.fixture
def env(tmp_path):
    return {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg', 'XDG_CACHE_HOME': str(tmp_path/'cache')}


def hashes(d) -> dict:
    "relative path -> sha256 of every file under `d`."
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(d).rglob('*')) if p.is_file()}


def start(cmd, *args, cwd, env):
    return subprocess.Popen([str(BIN/cmd), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(cmd, *args, cwd, env, timeout=300):
    p = start(cmd, *args, cwd=cwd, env=env)
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def wait_for(cond, timeout=240, what='condition'):
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout: raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def one_line(err, *parts):
    "stderr is one line (warnings and progress bars aside) holding every one of `parts`, and no traceback."
    clean = (re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', l).strip() for l in err.splitlines())
    lines = [l for l in clean if l and 'Warning' not in l and not l.startswith('warnings.warn') and not l.startswith('resuming ') and not re.search(r'\d+/\d+ \[', l)]
    assert 'Traceback' not in err and len(lines) == 1 and all(p in lines[0] for p in parts), err[-3000:]
    return lines[0]


def epochs_done(run_dir) -> int:
    m = Path(run_dir)/'metrics.csv'
    return max(len(m.read_text().splitlines()) - 1, 0) if m.exists() else 0


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A finished 1-epoch digits run to evaluate (made once)."
    d = tmp_path_factory.mktemp('trained')
    rc, _, err = run_script('ewas-train', '--ewas', *TINY, '--epochs', '1', '--out', 'run', cwd=d)
    assert rc == 0, err[-2000:]
    return d/'run'/'last.pt'


# ---------------------------------------------------------------- kill -9 during checkpoint writes
WRITER = """
import sys, torch
from ewas_nb.runs import save_checkpoint
path, i = sys.argv[1], 0
while True:
    i += 1
    save_checkpoint(path, {'version': i, 'w': torch.full((2_000_000,), float(i))})   # 8 MB: writes take a while
    print(i, flush=True)
"""


def test_kill_9_during_checkpoint_writes(tmp_path):
    "Killed at five moments while it rewrites last.pt: each time the file on disk is one whole, earlier version."
    path, seen = tmp_path/'last.pt', []
    for k in range(5):
        p = subprocess.Popen([sys.executable, '-c', WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        p.stdout.readline()                                # one version is on disk
        time.sleep(0.05 + 0.07 * k)                        # then somewhere in a later write
        p.kill(); p.wait()
        ck = load_checkpoint(path)
        assert ck['w'].eq(float(ck['version'])).all(), "a checkpoint mixes two versions"
        seen.append(ck['version'])
    partial = [q.name for q in tmp_path.iterdir() if q.suffix == '.tmp']
    with run_lock(tmp_path): pass                          # the next writer of the directory clears what a kill left
    assert not [q for q in tmp_path.iterdir() if q.suffix == '.tmp'], "a partial file survived the next writer"
    print(f"\nkill -9 during checkpoint writes: versions found whole after each kill: {seen}; partial files left by the kills, then removed by the next writer: {len(partial)}")


# ---------------------------------------------------------------- signals
def test_sigint_mid_epoch_keeps_epochs_and_says_how_to_resume(tmp_path, env):
    p = start('ewas-train', '--ewas', *TINY, '--epochs', '200', '--out', 'run', cwd=tmp_path, env=env)
    wait_for(lambda: epochs_done(tmp_path/'run') >= 1 or p.poll() is not None, what='the first epoch')
    time.sleep(0.3)                                         # into the next epoch
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    line = one_line(err, "interrupted (SIGINT): run keeps", "finished epoch(s) (last.pt); continue with: ewas-train --out run --resume")
    kept = int(line.split('run keeps ')[1].split()[0])
    ck = load_checkpoint(tmp_path/'run'/'last.pt')
    assert ck['epoch'] == kept == epochs_done(tmp_path/'run')
    print(f"\nSIGINT mid-epoch: status 130; {line}; last.pt sha256 {hashes(tmp_path/'run')['last.pt'][:16]} holds epoch {ck['epoch']}")
    assert not [f for f in hashes(tmp_path/'run') if f.endswith('.tmp') or f.endswith('.lock')]   # no partial file, no stale lock
    rc, _, err = run('ewas-train', *shlex.split(line.split('continue with: ')[1])[1:], '--epochs', str(kept + 1), '--quiet',
                     cwd=tmp_path, env=env)
    assert rc == 0, err[-2000:]
    assert load_checkpoint(tmp_path/'run'/'last.pt')['epoch'] == kept + 1


def test_sigterm_mid_evaluation_resumes_to_the_same_report(tmp_path, env, trained):
    args = [str(trained), '--n', '360', '--attacks', 'clean,pgd20', '--no-adaptive', '--no-checks', '--batch-size', '4', '--threads', '1']
    rc, _, err = run_script('ewas-eval', *args, '--out', 'whole', cwd=tmp_path)   # the uninterrupted reference
    assert rc == 0, err[-2000:]
    p = start('ewas-eval', *args, '--out', 'cut', cwd=tmp_path, env=env)
    batches = tmp_path/'cut'/'batches.jsonl'
    wait_for(lambda: (batches.exists() and len(batches.read_text().splitlines()) >= 3) or p.poll() is not None, what='three batches')
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err[-2000:]
    line = one_line(err, "interrupted (SIGTERM): cut keeps", "finished batch(es); continue with: ewas-eval")
    assert not (tmp_path/'cut'/'report.json').exists() and not (tmp_path/'cut'/'.lock').exists()
    again = shlex.split(line.split('continue with: ')[1])
    assert again[-1] == '--resume'
    rc, _, err = run(*again, cwd=tmp_path, env=env)
    assert rc == 0, err[-2000:]
    import pandas as pd
    whole, cut = pd.read_csv(tmp_path/'whole'/'report.csv'), pd.read_csv(tmp_path/'cut'/'report.csv')
    assert whole.correct.tolist() == cut.correct.tolist() and whole.accuracy.tolist() == cut.accuracy.tolist()
    print(f"\nSIGTERM mid-evaluation: status 143; {line}; resumed report equals the uninterrupted one: {whole.accuracy.tolist()}")


# ---------------------------------------------------------------- storage faults
@pytest.fixture
def tmpfs(tmp_path):
    "A 4 MiB tmpfs (root only; skipped where it cannot be mounted)."
    d = tmp_path/'tmpfs'
    d.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', str(d)], capture_output=True, text=True)
    if r.returncode: pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or 'mount failed'}")
    try: yield d
    finally: subprocess.run(['umount', '-l', str(d)], capture_output=True)


def fill(d, leave:int):
    "Fill the file system of `d` up to `leave` free bytes."
    st = os.statvfs(d)
    free = st.f_bavail * st.f_frsize
    try:
        with open(d/'filler', 'wb') as f: f.write(b'\0' * max(free - leave, 0))
    except OSError: pass   # full a little earlier than statvfs said


def test_disk_full_keeps_the_last_checkpoint(tmpfs):
    rc, _, err = run_script('ewas-train', '--ewas', *TINY, '--epochs', '1', '--out', 'run', cwd=tmpfs)
    assert rc == 0, err[-2000:]
    before = hashes(tmpfs/'run')
    fill(tmpfs, leave=0)
    rc, _, err = run_script('ewas-train', '--out', 'run', '--resume', '--epochs', '2', '--quiet', '--threads', '1', cwd=tmpfs)
    assert rc == 1, err[-2000:]
    one_line(err, "error: cannot write", "no space left on the device", "partial files were removed")
    assert hashes(tmpfs/'run') == before                   # every earlier file byte-identical, no partial file
    print(f"\ndisk full while training: status 1; {one_line(err, 'error')}; {len(before)} files before and after, "
          f"last.pt sha256 {before['last.pt'][:16]} both times")
    (tmpfs/'filler').unlink()                              # space again: the same command continues the run
    rc, _, err = run_script('ewas-train', '--out', 'run', '--resume', '--epochs', '2', '--quiet', '--threads', '1', cwd=tmpfs)
    assert rc == 0 and load_checkpoint(tmpfs/'run'/'last.pt')['epoch'] == 2, err[-2000:]


def test_disk_full_during_evaluation(tmpfs, trained):
    fill(tmpfs, leave=0)
    rc, _, err = run_script('ewas-eval', str(trained), '--n', '16', '--attacks', 'clean', '--no-adaptive', '--no-checks', '--out', 'ev',
                     '--threads', '1', cwd=tmpfs)
    assert rc == 1, err[-2000:]
    line = one_line(err, "error: cannot write", "no space left on the device")
    assert not [p for p in tmpfs.rglob('*') if p.name != 'filler' and p.is_file()]
    print(f"\ndisk full while evaluating: status 1; {line}; no file left behind")


def test_read_only_file_system_is_refused_before_work(tmpfs, trained):
    (tmpfs/'ev').mkdir()
    if subprocess.run(['mount', '-o', 'remount,ro', str(tmpfs)], capture_output=True).returncode: pytest.skip("cannot remount read-only")
    rc, _, err = run_script('ewas-eval', str(trained), '--n', '16', '--attacks', 'clean', '--out', 'ev/x', '--threads', '1', cwd=tmpfs)
    assert rc == 2, err[-2000:]
    one_line(err, "is not writable", "Read-only file system")
    rc, _, err = run_script('ewas-train', *TINY, '--epochs', '1', '--out', 'run', cwd=tmpfs)
    assert rc == 2
    print(f"\nread-only file system: status 2; {one_line(err, 'is not writable', 'Read-only file system')}")


# ---------------------------------------------------------------- data
def image_folder(root, bad=('train/cat/broken.jpg', 'train/dog/empty.png')):
    "A two-class ImageFolder of 8x8 PNGs (16 per class and split), plus the corrupt files `bad`."
    from PIL import Image
    g = torch.Generator().manual_seed(0)
    for split in ('train', 'test'):
        for c in ('cat', 'dog'):
            (root/split/c).mkdir(parents=True)
            for i in range(16):
                a = (torch.rand(8, 8, 3, generator=g) * 255).to(torch.uint8).numpy()
                Image.fromarray(a).save(root/split/c/f'{i}.png')
    for b in bad: (root/b).write_bytes(b'' if b.endswith('empty.png') else b'\xff\xd8 not really a jpeg')
    return root


def test_corrupt_images_named_nothing_written(tmp_path):
    data = image_folder(tmp_path/'data')
    work = tmp_path/'work'; work.mkdir()
    for cmd, args in [('ewas-train', ['--dataset', 'folder', '--data-dir', str(data), *FOLDER, '--out', 'run']),
                      ('ewas-demo', ['--data-dir', str(data), '--epochs', '1', '--out', 'demo', '--threads', '1'])]:
        rc, _, err = run_script(cmd, *args, cwd=work)
        assert rc == 2, err[-2000:]
        line = one_line(err, "2 unreadable image(s) in", "cat/broken.jpg", "dog/empty.png", "--skip-bad-images")
        assert list(work.iterdir()) == [], list(work.iterdir())
        print(f"\ncorrupt images, {cmd}: status 2, nothing written; {line}")
    rc, _, err = run_script('ewas-train', '--dataset', 'folder', '--data-dir', str(data), *FOLDER, '--out', 'run', '--skip-bad-images',
                     cwd=work)
    assert rc == 0 and "skipped 2 unreadable image(s)" in err, err[-2000:]
    assert load_checkpoint(work/'run'/'last.pt')['config']['data_dir'] == str(data.resolve())   # stored absolute


# ---------------------------------------------------------------- two writers
def test_second_writer_is_refused(tmp_path, env):
    p = start('ewas-train', '--ewas', *TINY, '--epochs', '200', '--out', 'run', cwd=tmp_path, env=env)
    wait_for(lambda: epochs_done(tmp_path/'run') >= 1 or p.poll() is not None, what='the first epoch')
    p.send_signal(signal.SIGSTOP)   # paused, it still holds the directory, and leaves the CPU to the two that start
    second = {x: start('ewas-train', *TINY, '--epochs', '200', '--out', 'run', x, cwd=tmp_path, env=env) for x in ('--resume', '--overwrite')}
    for extra, q in second.items():   # both at once: each starting process is seconds of imports
        _, err = q.communicate(timeout=300)
        assert q.returncode == 2, err[-2000:]
        print(f"\nsecond writer ({extra}): status 2; {one_line(err, 'run directory run is in use by another process (pid', 'pick another --out')}")
    assert p.poll() is None, "the first writer was harmed"
    p.send_signal(signal.SIGCONT); time.sleep(0.5)
    assert p.poll() is None, "the first writer did not go on"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and load_checkpoint(tmp_path/'run'/'last.pt')['epoch'] >= 1
