"""Console scripts: bad input gives one `error:` line, exit status 2 and nothing on disk; a tiny train/resume/eval."""
import os, subprocess, sys
from pathlib import Path
import pytest, torch
from ewas_nb.runs import load_checkpoint

BIN = Path(sys.executable).parent
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
TINY = ('--size 8 --width 0.0625 --epochs 1 --batch 64 --steps 1 --train-subset 128 --val-n 32 --val-steps 1 '
        '--quiet --threads 1').split()

BAD = [  # (command, arguments, expected message)
    ('ewas-train', ['--method', 'fgsm'], "unknown method 'fgsm'"),
    ('ewas-train', ['--arch', 'vgg16'], "unknown arch 'vgg16'"),
    ('ewas-train', ['--dataset', 'mnist'], "unknown dataset 'mnist'"),
    ('ewas-train', ['--defense', 'dropout'], "unknown defense 'dropout'"),
    ('ewas-train', ['--eps', '-1'], "eps must be >= 0"),
    ('ewas-train', ['--eps=-8/255'], "eps must be >= 0"),
    ('ewas-train', ['--steps', '0'], "steps must be an integer >= 1"),
    ('ewas-train', ['--lam', '-0.5', '--ewas'], "lam must be >= 0"),
    ('ewas-train', ['--dataset', 'folder'], "needs --data-dir"),
    ('ewas-train', ['--resume', '--out', 'nowhere'], "nothing to resume"),
    ('ewas-demo', ['--eps', '-1'], "eps must be >= 0"),
    ('ewas-demo', ['--steps', '0'], "steps must be an integer >= 1"),
    ('ewas-demo', ['--lam', '-1'], "lam must be >= 0"),
    ('ewas-demo', ['--method', 'fgsm'], "unknown method 'fgsm'"),
    ('ewas-demo', ['--attacks', 'clean,deepfool'], "unknown attack 'deepfool'"),
    ('ewas-demo', ['--data-dir', '/nonexistent/x'], "data directory not found"),
    ('ewas-eval', ['missing.pt'], "checkpoint not found"),
]


def _popen(cmd, args, cwd):
    return subprocess.Popen([str(BIN/cmd), *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _check_bad(p, msg):
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2, (p.args, p.returncode, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and msg in lines[0], (p.args, err)


def test_bad_input_one_line_status_2_nothing_written(tmp_path):
    "All cases in parallel (each a fresh process), each in its own empty directory, which must stay empty."
    dirs = [tmp_path/str(i) for i in range(len(BAD))]
    for d in dirs: d.mkdir()
    procs = [_popen(cmd, args, d) for (cmd, args, _), d in zip(BAD, dirs)]
    for p, (_, _, msg), d in zip(procs, BAD, dirs):
        _check_bad(p, msg)
        assert list(d.iterdir()) == [], (p.args, list(d.iterdir()))


def test_existing_run_dir_train_resume_overwrite_eval(tmp_path):
    r = subprocess.run([str(BIN/'ewas-train'), '--ewas', *TINY, '--out', 'run'], cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path/'run').iterdir()}
    bad = [_popen('ewas-train', ['--ewas', *TINY, '--out', 'run'], tmp_path),               # exists: no --resume/--overwrite
           _popen('ewas-demo', ['--out', 'run'], tmp_path),                                 # the demo never overwrites
           _popen('ewas-eval', ['run/last.pt', '--eps', '-1'], tmp_path),
           _popen('ewas-eval', ['run/last.pt', '--attacks', 'clean,deepfool', '--out', 'ev'], tmp_path)]
    for p, msg in zip(bad, ["run directory run exists; pass --resume", "the demo never overwrites",
                            "eps must be >= 0", "unknown attack 'deepfool'"]):
        _check_bad(p, msg)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path/'run').iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['run']
    # --resume with more epochs extends the run with its stored options; --overwrite replaces it
    r = subprocess.run([str(BIN/'ewas-train'), '--out', 'run', '--resume', '--epochs', '2', '--quiet', '--threads', '1'],
                       cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ck = load_checkpoint(tmp_path/'run'/'last.pt')
    assert ck['epoch'] == 2 and ck['config']['defense'] == 'ewas' and len(ck['metrics']) == 2
    r = subprocess.run([str(BIN/'ewas-train'), *TINY, '--out', 'run', '--overwrite'], cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ck = load_checkpoint(tmp_path/'run'/'last.pt')
    assert ck['epoch'] == 1 and ck['config']['defense'] == 'none'
    r = subprocess.run([str(BIN/'ewas-eval'), 'run/last.pt', '--n', '16', '--attacks', 'clean,pgd20', '--out', 'ev', '--threads', '1'],
                       cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path/'ev').is_dir() and any((tmp_path/'ev').iterdir())


def test_help_lists_the_options():
    for cmd, opts in [('ewas-train', ['--method', '--defense', '--ewas', '--lam', '--eps', '--resume', '--overwrite', '--amp',
                                      '--bf16', '--channels-last', '--workers', '--schedule']),
                      ('ewas-demo', ['--data-dir', '--out', '--epochs', '--lam', '--attacks']), ('ewas-eval', ['checkpoint', '--n'])]:
        r = subprocess.run([str(BIN/cmd), '--help'], env=ENV, capture_output=True, text=True)
        assert r.returncode == 0 and all(o in r.stdout for o in opts), (cmd, r.stdout)
