"""The catalogue of bad inputs to the console scripts, shared by tests/test_catalogue.py (which asserts every case) and
experiments/bad_input_catalogue.py (which writes the table to results/robustness/).

A case is one command line that must end with exactly one `error: ...` line on stderr, exit status 2, no traceback,
no file created in its (empty) working directory and no file of the earlier run and report changed. The numeric
cases are generated from the commands' own parsers: every numeric option of every command, given NaN, infinity and
(where it has a bound) a value just outside it."""
import contextlib, dataclasses, hashlib, io, os, runpy, sys, traceback
from pathlib import Path
from ewas_nb import cli
from ewas_nb.evaluate import EvalSpec
from ewas_nb.train import TrainConfig

BIN = Path(sys.executable).parent
TINY = ['--size', '8', '--width', '0.0625', '--epochs', '1', '--batch', '64', '--steps', '1', '--train-subset', '128', '--val-n', '32',
        '--val-steps', '1', '--quiet', '--threads', '1']
EVAL = ['--n', '16', '--attacks', 'clean,pgd20', '--no-adaptive', '--no-checks', '--threads', '1']
# what makes a command fail at once if a bad number were accepted: it then reports this instead, and the case fails
STOP = {'ewas-train': ['--dataset', 'folder', '--data-dir', '/nonexistent/data'], 'ewas-eval': ['missing.pt'],
        'ewas-demo': ['--data-dir', '/nonexistent/data']}

HAND = [  # (class, command, arguments, message); 'run' and 'ev' are the earlier run and report, 'empty' an empty directory,
          # 'notes' a directory of someone's files, 'half' a run directory without last.pt, 'folders/*' small ImageFolders
    ('options', 'ewas-train', ['--bogus', '1'], "unrecognized arguments: --bogus 1"),
    ('options', 'ewas-eval', ['x.pt', '--epochs', '3'], "unrecognized arguments: --epochs 3"),
    ('options', 'ewas-eval', ['--n', '3'], "give a checkpoint or --model FILE.py:FUNCTION"),
    ('options', 'ewas-eval', ['run/last.pt', '--model', 'torch.nn:Identity'], "give a checkpoint or --model FILE.py:FUNCTION (one of them)"),
    ('options', 'ewas-eval', ['run/last.pt', '--weights', 'run/best.pt', '--out', 'ev2'], "--weights goes with --model"),
    ('options', 'ewas-eval', ['--model', 'torch.nn:Identity', '--out', 'ev2'], "--model needs --dataset"),
    ('options', 'ewas-train', ['--model', 'torch.nn:Identity', '--ewas'], "add the defence in its function"),
    ('options', 'ewas-train', ['--model', 'torch.nn:Identity', '--arch', 'wrn34_10'], "--model builds the whole model: drop --arch"),
    ('options', 'ewas-demo', ['--epochs', 'two'], "invalid int value: 'two'"),
    ('options', 'ewas-train', ['--ewas', '--defense', 'cas'], "--ewas contradicts --defense cas"),
    ('names', 'ewas-train', ['--method', 'fgsm'], "unknown method 'fgsm'"),
    ('names', 'ewas-train', ['--arch', 'vgg16'], "unknown arch 'vgg16'"),
    ('names', 'ewas-train', ['--dataset', 'mnist'], "unknown dataset 'mnist'"),
    ('names', 'ewas-train', ['--defense', 'dropout'], "unknown defense 'dropout'"),
    ('names', 'ewas-train', ['--schedule', 'linear'], "unknown schedule 'linear'"),
    ('names', 'ewas-train', ['--val-split', 'valid'], "unknown val_split 'valid'"),
    ('names', 'ewas-train', ['--device', 'tpu9'], "unknown device 'tpu9'"),
    ('names', 'ewas-train', ['--channels', '2'], "unknown channels 2; choose from 1, 3"),
    ('names', 'ewas-eval', ['missing.pt', '--channels', '2'], "unknown channels 2; choose from 1, 3"),
    ('names', 'ewas-eval', ['missing.pt', '--attacks', 'clean,deepfool'], "unknown attack 'deepfool'"),
    ('names', 'ewas-eval', ['missing.pt', '--protocol', 'mine'], "unknown protocol 'mine'"),
    ('names', 'ewas-eval', ['run/last.pt', '--out', 'ev2', '--device', 'tpu9'], "unknown device 'tpu9'"),
    ('names', 'ewas-eval', ['run/last.pt', '--out', 'ev2', '--dataset', 'mnist', *EVAL], "unknown dataset 'mnist'"),
    ('names', 'ewas-demo', ['--method', 'fgsm'], "unknown method 'fgsm'"),
    ('names', 'ewas-demo', ['--attacks', 'clean,deepfool'], "unknown attack 'deepfool'"),
    ('names', 'ewas-demo', ['--attacks', ''], "--attacks names no attack"),
    ('names', 'ewas-eval', ['--model', 'models/net.pt:make', '--dataset', 'digits'], "must be named FILE.py:FUNCTION or package.module:FUNCTION"),
    ('names', 'ewas-train', ['--model', 'net'], "must be named FILE.py:FUNCTION or package.module:FUNCTION"),
    ('numbers', 'ewas-train', ['--eps', '2'], "eps must be >= 0 and <= 1"),
    ('numbers', 'ewas-train', ['--eps=-8/255'], "eps must be >= 0"),
    ('numbers', 'ewas-train', ['--eps', '8/0'], "eps"),
    ('numbers', 'ewas-train', ['--alpha', '0'], "step size alpha must be > 0"),
    ('numbers', 'ewas-train', ['--milestones', '0.5,2'], "milestones must all be fractions in (0, 1) or all whole epochs"),
    ('numbers', 'ewas-eval', ['missing.pt', '--eps', '300/255'], "eps must be >= 0 and <= 1"),
    ('files', 'ewas-eval', ['missing.pt'], "checkpoint not found: missing.pt"),
    ('files', 'ewas-eval', ['run'], "checkpoint not found: run"),
    ('files', 'ewas-eval', ['bad/empty.pt', *EVAL], "corrupt or truncated checkpoint"),
    ('files', 'ewas-eval', ['bad/junk.pt', *EVAL], "corrupt or truncated checkpoint"),
    ('files', 'ewas-eval', ['bad/tensor.pt', *EVAL], "is not an ewas_nb checkpoint (got Tensor)"),
    ('files', 'ewas-eval', ['bad/evil.pt', *EVAL], "that could run code"),
    ('files', 'ewas-eval', ['--model', 'nowhere.py:make', '--dataset', 'digits'], "model file not found: nowhere.py"),
    ('files', 'ewas-train', ['--model', 'nowhere.py:make'], "model file not found: nowhere.py"),
    ('files', 'ewas-eval', ['--model', 'torch.nn:Identity', '--dataset', 'digits', '--weights', 'nowhere.pt', '--out', 'ev2'], "weights not found: nowhere.pt"),
    ('files', 'ewas-eval', ['--model', 'no_such_pkg.models:make', '--dataset', 'digits', '--out', 'ev2', *EVAL], "cannot import no_such_pkg.models"),
    ('files', 'ewas-eval', ['--model', 'torch.nn:Linear', '--dataset', 'digits', '--out', 'ev2', *EVAL], "torch.nn:Linear() failed: TypeError"),
    ('files', 'ewas-eval', ['--model', 'torch.nn:Identity', '--dataset', 'digits', '--out', 'ev2', *EVAL], "the model must return logits of shape (N, K)"),
    ('files', 'ewas-eval', ['--model', 'torch.nn:Flatten', '--dataset', 'digits', '--weights', 'run/last.pt', '--out', 'ev2', *EVAL],
     "do not fit the model: Unexpected key(s)"),
    ('files', 'ewas-eval', ['--model', 'torch.nn:Flatten', '--dataset', 'digits', '--weights', 'bad/evil.pt', '--out', 'ev2', *EVAL], "that could run code"),
    ('files', 'ewas-eval', ['run/last.pt', '--out', 'ev2', '--save-adv', 'run/config.json', *EVAL], "--save-adv file run/config.json exists"),
    ('files', 'ewas-eval', ['run/last.pt', '--out', 'ev2', '--save-adv', 'run', *EVAL], "--save-adv file run is a directory"),
    ('files', 'ewas-eval', ['run/last.pt', '--out', 'ev', '--resume', '--save-adv', 'run/config.json', *EVAL], "--resume continues the report, not that file"),
    ('files', 'ewas-train', ['--dataset', 'folder'], "needs --data-dir"),
    ('files', 'ewas-train', ['--dataset', 'folder', '--data-dir', 'nowhere'], "data directory not found"),
    ('files', 'ewas-demo', ['--data-dir', '/nonexistent/x'], "data directory not found"),
    ('files', 'ewas-eval', ['run/last.pt', '--data-dir', '/nonexistent/x', '--out', 'ev2'], "data directory not found"),
    ('files', 'ewas-train', ['--out', 'run', *TINY], "run directory run exists; pass --resume"),
    ('files', 'ewas-train', ['--out', 'notes', '--overwrite', *TINY], "refusing to overwrite notes"),
    ('files', 'ewas-train', ['--out', 'run/last.pt', *TINY], "exists and is not a directory"),
    ('files', 'ewas-eval', ['run/last.pt', '--out', 'ev', *EVAL], "run directory ev exists; pass --resume"),
    ('files', 'ewas-demo', ['--out', 'run'], "the demo never overwrites one"),
    ('resume', 'ewas-train', ['--resume'], "--resume needs --out"),
    ('resume', 'ewas-train', ['--resume', '--out', 'nowhere'], "nothing to resume: nowhere does not exist"),
    ('resume', 'ewas-train', ['--resume', '--out', 'empty'], "nothing to resume: empty has no last.pt (it is empty)"),
    ('resume', 'ewas-train', ['--resume', '--out', 'half'], "nothing to resume: half has no last.pt (it holds best.pt, config.json, metrics.csv)"),
    ('resume', 'ewas-train', ['--resume', '--overwrite', '--out', 'run'], "--resume and --overwrite exclude each other"),
    ('resume', 'ewas-train', ['--resume', '--out', 'run', '--lr', '0.5'], "the run in run differs from this call: lr 0.1 there, 0.5 asked"),
    ('resume', 'ewas-train', ['--resume', '--out', 'run', '--method', 'trades'], "method 'pgd' there, 'trades' asked"),
    ('resume', 'ewas-train', ['--resume', '--out', 'run', '--no-augment'], "augment True there, False asked"),
    ('resume', 'ewas-train', ['--resume', '--out', 'run', '--defense', 'cas'], "defense 'ewas' there, 'cas' asked"),
    ('resume', 'ewas-train', ['--resume', '--out', 'run', '--eps', '2'], "eps must be >= 0 and <= 1"),
    ('resume', 'ewas-eval', ['run/last.pt', '--out', 'nowhere', '--resume', *EVAL], "nothing to resume: nowhere does not exist"),
    ('resume', 'ewas-eval', ['run/last.pt', '--out', 'empty', '--resume', *EVAL], "nothing to resume: empty has no evaluation.json"),
    ('resume', 'ewas-eval', ['run/last.pt', '--out', 'ev', '--resume', *EVAL[2:], '--n', '20'], "n 16 there, 20 asked"),
    ('resume', 'ewas-eval', ['run/last.pt', '--out', 'ev', '--resume', *EVAL, '--eps', '4/255'], "differs from this call: eps"),
    ('resume', 'ewas-eval', ['run/last.pt', '--out', 'ev', '--resume', *EVAL, '--seed', '3'], "seed 0 there, 3 asked"),
    ('resume', 'ewas-eval', ['run/last.pt', '--out', 'ev', '--resume', '--n', '16', '--attacks', 'clean', '--no-adaptive', '--no-checks'],
     "has rows this call would drop (pgd20)"),
    ('resume', 'ewas-eval', ['run/last.pt', '--out', 'ev', '--resume', '--overwrite', *EVAL], "--resume and --overwrite exclude each other"),
    ('data', 'ewas-train', ['--dataset', 'folder', '--data-dir', 'folders/corrupt', *TINY[:-3]], "2 unreadable image(s) in"),
    ('data', 'ewas-demo', ['--data-dir', 'folders/corrupt', '--out', 'demo'], "cat/broken.jpg"),
    ('data', 'ewas-train', ['--dataset', 'folder', '--data-dir', 'folders/one_class', '--size', '8'], "has images of only 1 class (cat)"),
    ('data', 'ewas-demo', ['--data-dir', 'folders/one_class', '--out', 'demo'], "has images of only 1 class (cat)"),
    ('data', 'ewas-train', ['--dataset', 'folder', '--data-dir', 'folders/empty'], "no images in"),
    ('data', 'ewas-eval', ['run/last.pt', '--dataset', 'folder', '--data-dir', 'folders/one_class', '--out', 'ev2', *EVAL],
     "has images of only 1 class (cat)"),
]


def _bound(m, t):
    "A value just outside the declared bounds of a field (None: it has none)."
    if m.get('lo') is not None: return m['lo'] - 1
    if m.get('gt') is not None: return m['gt']
    if m.get('hi') is not None: return m['hi'] + (1 if t == 'int' else 0.5)
    return None


def numeric_cases() -> list:
    "Every numeric option of every command (the settings' fields it exposes, plus --threads, --n-eval), each given NaN, inf, out of range."
    out = []
    for cmd, cls, only in (('ewas-train', TrainConfig, None), ('ewas-eval', EvalSpec, None), ('ewas-demo', TrainConfig, cli.DEMO_TRAIN)):
        for f in dataclasses.fields(cls):
            t = f.type if isinstance(f.type, str) else f.type.__name__
            if (only is not None and f.name not in only) or t not in ('int', 'float', 'list') or f.metadata.get('kind') == 'names': continue
            flag = '--' + f.name.replace('_', '-')
            values = ['nan', 'inf', '-inf'] + ([] if (b := _bound(f.metadata, t)) is None else [str(b)])
            out += [('numbers', cmd, [f'{flag}={v}', *STOP[cmd]], f"{f.name} must|argument {flag}:") for v in values]
        extra = ['--threads'] + (['--n-eval'] if cmd == 'ewas-demo' else [])
        out += [('numbers', cmd, [f'{flag}={v}', *STOP[cmd]], f"argument {flag}:") for flag in extra for v in ('nan', 'inf', '0', '-1')]
    return out


CASES = HAND + numeric_cases()


def snapshot(d) -> dict:
    "Every file under `d`: relative path -> (sha256, mtime_ns)."
    return {str(p.relative_to(d)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(Path(d).rglob('*')) if p.is_file()}


def run_script(cmd, *args, cwd) -> tuple:
    """Run console script `cmd` in this process (runpy, as `python ewas-... args` would: the same parsing and `sys.exit`
    status, without a fresh process's seconds of imports), in `cwd`: (exit status, stdout, stderr); an exception that
    escapes is printed to stderr and its status is 'traceback'."""
    old_argv, old_cwd, out, err = sys.argv, os.getcwd(), io.StringIO(), io.StringIO()
    sys.argv = [str(BIN/cmd), *args]
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try: runpy.run_path(str(BIN/cmd), run_name='__main__'); status = 0
            except SystemExit as e: status = 0 if e.code is None else e.code
            except BaseException: traceback.print_exc(); status = 'traceback'
    finally: sys.argv = old_argv; os.chdir(old_cwd)
    return status, out.getvalue(), err.getvalue()


def run_case(cmd, args, cwd) -> tuple:
    "`run_script`'s (exit status, stderr)."
    status, _, err = run_script(cmd, *args, cwd=cwd)
    return status, err


def verdict(status, err, msg) -> dict:
    "What a case shows: status, one line, traceback, and whether the line holds the expected message (alternatives split by |)."
    lines = [l for l in err.strip().splitlines() if 'Warning' not in l and not l.startswith('  warnings.warn')]
    return dict(status=status, one_line=len(lines) == 1 and lines[0].startswith('error: '), traceback='Traceback' in err,
                message_ok=bool(lines) and any(m in lines[0] for m in msg.split('|')), line=lines[0] if lines else '')


def make_earlier(d):
    "The directory the cases run against: a tiny finished run (run/), its report (ev/), and the bad files and folders they name."
    import torch
    from PIL import Image
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    assert run_case('ewas-train', ['--ewas', *TINY, '--out', 'run'], d)[0] == 0
    assert run_case('ewas-eval', ['run/last.pt', '--out', 'ev', *EVAL], d)[0] == 0
    (d/'empty').mkdir(); (d/'notes').mkdir(); (d/'notes'/'thesis.tex').write_text('...')
    (d/'half').mkdir()
    for f in ('best.pt', 'config.json', 'metrics.csv'): (d/'half'/f).write_bytes((d/'run'/f).read_bytes())
    (d/'bad').mkdir(); (d/'bad'/'empty.pt').write_bytes(b''); (d/'bad'/'junk.pt').write_bytes(os.urandom(512))
    torch.save(torch.zeros(3), d/'bad'/'tensor.pt')
    class Evil:
        def __reduce__(self): return (os.system, (f'touch {d}/pwned',))
    torch.save({'model': Evil()}, d/'bad'/'evil.pt')
    g = torch.Generator().manual_seed(0)
    for name, classes in (('corrupt', ('cat', 'dog')), ('one_class', ('cat',)), ('empty', ())):
        for split in ('train', 'test'):
            (d/'folders'/name/split).mkdir(parents=True)
            for c in classes:
                (d/'folders'/name/split/c).mkdir()
                for i in range(8):
                    Image.fromarray((torch.rand(8, 8, 3, generator=g) * 255).to(torch.uint8).numpy()).save(d/'folders'/name/split/c/f'{i}.png')
    (d/'folders'/'corrupt'/'train'/'cat'/'broken.jpg').write_bytes(b'\xff\xd8 not really a jpeg')
    (d/'folders'/'corrupt'/'train'/'dog'/'empty.png').write_bytes(b'')
    return d
