"""Checkpoints: atomic writes survive a kill, bad files give one clear error, pickles carrying code are refused,
and a run killed with SIGKILL mid-epoch resumes to exactly the uninterrupted result."""
import os, pickle, signal, subprocess, sys, textwrap, time
from pathlib import Path
import pytest, torch
from ewas_nb.runs import save_checkpoint, load_checkpoint

BIN = Path(sys.executable).parent
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}


def _one_line_value_error(path, contains):
    with pytest.raises(ValueError) as e: load_checkpoint(path)
    msg = str(e.value)
    assert contains in msg and '\n' not in msg, msg
    return msg


def test_round_trip_weights_only(tmp_path):
    state = {'model': {'w': torch.randn(3, 3)}, 'epoch': 2, 'config': {'arch': 'resnet18', 'milestones': [0.5, 0.75]}}
    save_checkpoint(tmp_path/'a.pt', state)
    ck = load_checkpoint(tmp_path/'a.pt')
    assert torch.equal(ck['model']['w'], state['model']['w']) and ck['config'] == state['config']
    assert [p.name for p in tmp_path.iterdir()] == ['a.pt']  # no temp file left


def test_missing_truncated_corrupt(tmp_path):
    save_checkpoint(tmp_path/'ok.pt', {'w': torch.randn(1000)})
    data = (tmp_path/'ok.pt').read_bytes()
    (tmp_path/'trunc.pt').write_bytes(data[:len(data) // 2])
    flipped = bytearray(data); flipped[len(flipped) // 3: len(flipped) // 3 + 64] = b'\xff' * 64
    (tmp_path/'flip.pt').write_bytes(bytes(flipped))
    (tmp_path/'junk.pt').write_bytes(b'hello, not a checkpoint')
    (tmp_path/'empty.pt').write_bytes(b'')
    _one_line_value_error(tmp_path/'none.pt', 'checkpoint not found')
    for f in ('trunc.pt', 'junk.pt', 'empty.pt'): _one_line_value_error(tmp_path/f, 'corrupt or truncated checkpoint')
    try: ck = load_checkpoint(tmp_path/'flip.pt')   # bytes flipped inside the tensor data may still load...
    except ValueError as e: assert 'corrupt' in str(e) and '\n' not in str(e)  # ...else: one clear line
    else: assert set(ck) == {'w'}


class Evil:
    "A pickle payload: unpickling it would run a shell command."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))


@pytest.mark.parametrize('writer', ['torch', 'pickle'])
def test_code_carrying_pickle_is_refused(tmp_path, writer):
    marker, path = tmp_path/'pwned', tmp_path/'evil.pt'
    payload = {'model': {'w': torch.ones(2)}, 'hook': Evil(marker)}
    if writer == 'torch': torch.save(payload, path)
    else: path.write_bytes(pickle.dumps(payload))
    msg = _one_line_value_error(path, 'refusing to load')
    assert 'could run code' in msg and 'system' in msg
    time.sleep(0.1)
    assert not marker.exists(), "the payload ran"


SAVER = textwrap.dedent("""
    import sys, torch
    from ewas_nb.runs import save_checkpoint
    path, i = sys.argv[1], 0
    while True:
        i += 1
        save_checkpoint(path, {'i': i, 'x': torch.full((8_000_000,), float(i))})
""")


def test_kill_during_save_leaves_previous_checkpoint(tmp_path):
    "SIGKILL a process that keeps rewriting a 32 MB checkpoint, several times, mid-write: the file always loads whole."
    script, path = tmp_path/'saver.py', tmp_path/'last.pt'
    script.write_text(SAVER)
    killed_mid_write = 0
    for attempt in range(4):
        p = subprocess.Popen([sys.executable, str(script), str(path)], env=ENV)
        try:
            t0 = time.time()
            while time.time() - t0 < 60:  # wait for a temp file next to a complete checkpoint: a write in progress
                if path.exists() and any(f.name.startswith('.last.pt.') for f in tmp_path.iterdir()): break
                time.sleep(0.005)
            time.sleep(0.01 * attempt)
            killed_mid_write += any(f.name.startswith('.last.pt.') for f in tmp_path.iterdir())
        finally:
            p.send_signal(signal.SIGKILL); p.wait()
        ck = load_checkpoint(path)
        assert ck['i'] >= 1 and torch.equal(ck['x'], torch.full((8_000_000,), float(ck['i'])))
    assert killed_mid_write >= 1, "never caught a write in progress"


# -- exact resume after SIGKILL mid-epoch ------------------------------------------------------------------------
TINY = ['--ewas', '--size', '8', '--width', '0.125', '--epochs', '3', '--batch', '32', '--steps', '2', '--train-subset', '512', '--val-n', '64',
        '--val-steps', '2', '--threads', '1', '--quiet', '--seed', '3']


def _train(*args, **kw):
    return subprocess.Popen([str(BIN/'ewas-train'), *TINY, *args], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_sigkill_mid_epoch_then_resume_is_exact(tmp_path):
    full, killed = tmp_path/'full', tmp_path/'killed'
    ref = _train('--out', str(full))          # the uninterrupted run, concurrently
    p = _train('--out', str(killed))
    t0 = time.time()
    while not (killed/'last.pt').exists():    # first epoch checkpoint written
        assert p.poll() is None, p.communicate()
        assert time.time() - t0 < 120
        time.sleep(0.02)
    time.sleep(0.5)                           # well into the second epoch
    p.send_signal(signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL
    assert load_checkpoint(killed/'last.pt')['epoch'] == 1, "the kill came too late: not mid-second-epoch"
    r = subprocess.run([str(BIN/'ewas-train'), '--out', str(killed), '--resume', '--quiet', '--threads', '1'],
                       env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out, err = ref.communicate()
    assert ref.returncode == 0, err
    a, b = load_checkpoint(full/'last.pt'), load_checkpoint(killed/'last.pt')
    assert a['epoch'] == b['epoch'] == 3
    assert a['model'].keys() == b['model'].keys()
    for k in a['model']: assert torch.equal(a['model'][k], b['model'][k]), k
    strip = lambda rows: [{k: v for k, v in r.items() if k != 'time_s'} for r in rows]
    assert strip(a['metrics']) == strip(b['metrics'])
    for k in a['optimizer']['state']: assert torch.equal(a['optimizer']['state'][k]['momentum_buffer'], b['optimizer']['state'][k]['momentum_buffer'])


def test_committed_checkpoints_load():
    "Every checkpoint committed under results/ (written by earlier versions too) rebuilds its model and its TrainConfig."
    from ewas_nb.baselines import load_model
    from ewas_nb.train import stored_config
    root = Path(__file__).resolve().parents[1]/'results'
    paths = sorted(root.rglob('last.pt'))
    for p in paths:
        model, cfg = load_model(p, device='cpu')
        c = stored_config(load_checkpoint(p))
        assert c.method == cfg['method'] and c.defense == cfg['model']['defense'] and c.epochs >= cfg['epoch'], p
        x = torch.rand(2, *cfg['model']['input_size'])
        with torch.no_grad(): assert model(x).shape == (2, cfg['model']['num_classes'])
    if root.is_dir() and any(root.iterdir()): assert paths
