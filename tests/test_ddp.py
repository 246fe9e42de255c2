"""The fit loop under `torchrun` with 2 gloo processes gives the weights of the 1-process run with the same global batch.

The model has no batch norm: under DDP its statistics would be per process (SyncBatchNorm needs CUDA), so the two
runs would legitimately differ. The training attack starts without random noise (`random_start=False`): each
process draws its own noise, so a random start is not the same draw as in one process."""
import os, runpy, subprocess, sys, textwrap, time
from pathlib import Path
import pytest, torch
from ewas_nb.runs import load_checkpoint

SCRIPT = textwrap.dedent("""
    import sys, torch, torch.nn as nn
    torch.set_num_threads(1)
    from sklearn.datasets import load_digits
    from torch.utils.data import TensorDataset
    from ewas_nb.core import add_ewas
    from ewas_nb.train import fit
    out, method = sys.argv[1], sys.argv[2]
    d = load_digits()
    X, Y = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16, torch.tensor(d.target)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.ReLU(),
                        nn.Flatten(), nn.Linear(256, 10))
    model = add_ewas(net, after='3', input_size=(1, 8, 8), lam=0.1)   # EWAS: its aux loss and mask go through DDP too
    fit(model, TensorDataset(X[:512], Y[:512]), (X[-128:], Y[-128:]), method=method, epochs=2, batch=64, lr=0.05,
        eps=0.1, alpha=0.04, steps=3, random_start=False, val_steps=2, out=out, seed=0, progress=False)
""")


@pytest.mark.timeout(120)
@pytest.mark.parametrize('method', ['pgd', 'trades'])
def test_two_gloo_processes_match_one(tmp_path, method):
    script = tmp_path/'run.py'
    script.write_text(SCRIPT)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
    env.pop('WORLD_SIZE', None)
    t0 = time.time()
    two = subprocess.Popen([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                            str(script), str(tmp_path/'two'), method], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert 'WORLD_SIZE' not in os.environ
    argv, sys.argv = sys.argv, [str(script), str(tmp_path/'one'), method]
    try: runpy.run_path(str(script), run_name='__main__')   # the one-process run in this process, meanwhile: no imports to wait for
    finally: sys.argv = argv
    o, e = two.communicate(timeout=110)
    assert two.returncode == 0, e[-3000:]
    a, b = load_checkpoint(tmp_path/'one'/'last.pt'), load_checkpoint(tmp_path/'two'/'last.pt')
    assert (a['config']['world_size'], b['config']['world_size']) == (1, 2)
    assert a['epoch'] == b['epoch'] == 2
    for k in a['model']: torch.testing.assert_close(a['model'][k], b['model'][k], rtol=1e-4, atol=1e-5, msg=k)
    for ra, rb in zip(a['metrics'], b['metrics']):
        for k in ('train_loss', 'train_acc', 'val_clean_acc'): assert abs(ra[k] - rb[k]) < 1e-3, (k, ra[k], rb[k])
    assert len(b['rng']) == 2                      # every rank's RNG state, for an exact resume under DDP
    assert sorted(p.name for p in (tmp_path/'two').iterdir()) == sorted(p.name for p in (tmp_path/'one').iterdir())
    print(f"{method}: 1 vs 2 processes in {time.time() - t0:.1f} s")
