"""Console scripts doing real work: a tiny train/resume/overwrite, any model with a state dict and an ImageFolder, your own
model trained and evaluated, grey images, torchrun. Fresh processes where the process is the point (torchrun, a user's
file, grey images); in this process (`catalogue.run_script`, seconds of imports less) where it is not. The bad inputs
are in tests/catalogue.py."""
import os, subprocess, sys
from pathlib import Path
import pytest, torch
from ewas_nb.runs import load_checkpoint
from catalogue import run_script

BIN = Path(sys.executable).parent
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
TINY = ('--size 8 --width 0.0625 --epochs 1 --batch 64 --steps 1 --train-subset 128 --val-n 32 --val-steps 1 '
        '--quiet --threads 1').split()

# Bad command lines: tests/catalogue.py tries them all in-process (tests/test_catalogue.py); nbs/07_cli.ipynb runs some as
# fresh processes. Here: what needs a real run first, and the commands doing real work.


def test_existing_run_dir_train_resume_overwrite(tmp_path):
    "In this process (`run_script`): the console script as `ewas-train ...` runs it, without a fresh process's imports."
    status, _, err = run_script('ewas-train', '--ewas', *TINY, '--out', 'run', cwd=tmp_path)
    assert status == 0, err
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path/'run').iterdir()}
    status, _, err = run_script('ewas-train', '--ewas', *TINY, '--out', 'run', cwd=tmp_path)
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith('error: run directory run exists; pass --resume'), err
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path/'run').iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['run']
    # --resume with more epochs extends the run with its stored options; --overwrite replaces it
    status, _, err = run_script('ewas-train', '--out', 'run', '--resume', '--epochs', '2', '--quiet', '--threads', '1', cwd=tmp_path)
    assert status == 0, err
    ck = load_checkpoint(tmp_path/'run'/'last.pt')
    assert ck['epoch'] == 2 and ck['config']['defense'] == 'ewas' and len(ck['metrics']) == 2
    status, _, err = run_script('ewas-train', *TINY, '--out', 'run', '--overwrite', cwd=tmp_path)
    assert status == 0, err
    ck = load_checkpoint(tmp_path/'run'/'last.pt')
    assert ck['epoch'] == 1 and ck['config']['defense'] == 'none'   # ewas-eval of an ewas-train checkpoint: the tests below


def test_help_lists_the_options():
    "Each command's --help (its parser, as the console script prints it) names its main options."
    from ewas_nb import cli
    for parser, opts in [(cli._train_parser, ['--method', '--defense', '--ewas', '--lam', '--eps', '--resume', '--overwrite', '--amp',
                                              '--bf16', '--no-channels-last', '--channels', '--workers', '--schedule']),
                         (cli._demo_parser, ['--data-dir', '--out', '--epochs', '--lam', '--attacks']),
                         (cli._eval_parser, ['checkpoint', '--n', '--model', '--weights', '--save-adv', '--channels', '--norm'])]:
        text = parser().format_help()
        assert all(o in text for o in opts), (parser.__name__, text)


USER_NET = ("import torch.nn as nn\n"
            "def make(classes=2):\n"
            "    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),\n"
            "                         nn.Linear(32, classes))\n")


def _image_folder(root, n=12, seed=0):
    "An ImageFolder of two classes (cat, dog) of 8x8 images under root/train and root/test, n images per split."
    from PIL import Image
    g = torch.Generator().manual_seed(seed)
    for split in ('train', 'test'):
        for i in range(n):
            c = ('cat', 'dog')[i % 2]
            (root/split/c).mkdir(parents=True, exist_ok=True)
            Image.fromarray((torch.rand(8, 8, 3, generator=g) * 255).to(torch.uint8).numpy()).save(root/split/c/f'{i:02d}.png')


def test_any_model_user_file_state_dict_image_folder(tmp_path):
    "A bare user file, a state dict and an ImageFolder: one `ewas-eval --model` command; per_example.csv names ImageFolder indices."
    import pandas as pd
    (tmp_path/'user.py').write_text(USER_NET)
    _image_folder(tmp_path/'imgs')
    sys.path.insert(0, str(tmp_path))
    try: import user
    finally: sys.path.remove(str(tmp_path))
    torch.manual_seed(0)
    torch.save(user.make().state_dict(), tmp_path/'w.pt')
    r = subprocess.run([str(BIN/'ewas-eval'), '--model', 'user.py:make', '--weights', 'w.pt', '--dataset', 'folder', '--data-dir', 'imgs',
                        '--attacks', 'clean,pgd20', '--n', '20', '--save-adv', 'adv.pt', '--threads', '1'],
                       cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert max(map(len, r.stdout.splitlines())) <= 120, r.stdout          # the printed report fits a terminal
    ex = pd.read_csv(tmp_path/'w_eval'/'per_example.csv')
    assert ex.columns.tolist() == ['index', 'label', 'clean', 'pgd20', 'worst_case', 'fooled_by']
    assert len(ex) == 12 and sorted(ex['index']) == list(range(12))      # n is capped at the 12 test images, each named once
    assert ex.label.tolist() == [int(i >= 6) for i in ex['index']]       # ImageFolder order: the 6 cats, then the 6 dogs
    assert (ex.worst_case == (ex.clean & ex.pgd20)).all()
    adv = torch.load(tmp_path/'adv.pt', weights_only=True)
    assert adv['index'].tolist() == ex['index'].tolist() and adv['fooled'].tolist() == (ex.worst_case == 0).tolist()
    assert ((adv['images'] - adv['images'].clamp(0, 1)).abs().max() == 0)
    full = open(tmp_path/'w_eval'/'report.md').read()
    assert 'implementation' in full and 'hint' not in r.stdout            # the files keep every column
    assert '\r' not in r.stderr and '\x1b' not in r.stderr and 'attacks: 2/2 in ' in r.stderr, r.stderr   # a log: plain lines
    # the same call again: the report directory and the images file are refused, then --overwrite replaces both
    again = ['--model', 'user.py:make', '--weights', 'w.pt', '--dataset', 'folder', '--data-dir', 'imgs',
             '--attacks', 'clean,pgd20', '--n', '20', '--save-adv', 'adv.pt', '--threads', '1', '--no-checks']
    status, _, err = run_script('ewas-eval', *again, cwd=tmp_path)   # in this process from here on
    assert status == 2 and err.startswith("error: run directory w_eval exists"), err
    status, _, err = run_script('ewas-eval', *again, '--overwrite', '--budget', 'quick', '--aa-version', 'plus', '--set', 'pgd20.steps=3', cwd=tmp_path)
    assert status == 0, err
    rep = pd.read_csv(tmp_path/'w_eval'/'report.csv')
    assert rep.set_index('attack').steps['pgd20'] == 3 and (rep.budget == 'quick, AutoAttack plus, set pgd20.steps=3').all()
    assert 'budget `quick, AutoAttack plus, set pgd20.steps=3`' in open(tmp_path/'w_eval'/'report.md').read()


def test_train_own_model_then_eval_from_checkpoint(tmp_path):
    "`ewas-train --model FILE.py:FUNCTION` records the function: `ewas-eval CHECKPOINT` rebuilds the model from it, from another directory."
    (tmp_path/'user.py').write_text(USER_NET)
    _image_folder(tmp_path/'imgs', n=16)
    status, _, err = run_script('ewas-train', '--model', 'user.py:make', '--dataset', 'folder', '--data-dir', 'imgs', '--epochs', '1',
                                '--batch', '4', '--steps', '1', '--val-n', '4', '--val-steps', '1', '--quiet', '--threads', '1', '--out', 'run',
                                cwd=tmp_path)   # in this process: the user's file is imported under a name of its path
    assert status == 0, err
    ck = load_checkpoint(tmp_path/'run'/'last.pt')
    assert ck['config']['model'] == {'factory': f"{(tmp_path/'user.py').resolve()}:make", 'kwargs': {}}
    (tmp_path/'elsewhere').mkdir()
    status, _, err = run_script('ewas-eval', '../run/last.pt', '--attacks', 'clean,pgd20', '--n', '8', '--no-checks', '--threads', '1',
                                cwd=tmp_path/'elsewhere')
    assert status == 0, err
    assert (tmp_path/'run'/'last_eval'/'per_example.csv').exists()


def test_every_option_says_what_it_does():
    "Every option has a help text; a --no-X flag says what it turns off, not what the setting does when on."
    import argparse
    from ewas_nb import cli
    for p in (cli._train_parser(), cli._eval_parser(), cli._demo_parser()):
        for a in p._actions:
            if isinstance(a, argparse._HelpAction): continue
            assert a.help and len(a.help) > 8, (p.prog, a.option_strings)
            assert not a.help.startswith('turn off:'), (p.prog, a.option_strings, a.help)
    helps = {o: a.help for p in (cli._train_parser(), cli._eval_parser()) for a in p._actions for o in a.option_strings}
    assert helps['--no-augment'].startswith('no random crop') and helps['--no-adaptive'].startswith('do not add')
    assert helps['--no-random-start'].startswith('start the training attack at the image') and helps['--no-aux'].startswith('train without')
    assert helps['--no-checks'].startswith('skip') and helps['--no-worst-case'].startswith('leave out')


def test_demo_results_with_sanity_checks(tmp_path):
    "`ewas-demo --checks`: reports carrying their checks table are saved together (pandas cannot concat frames whose attrs hold tables)."
    import pandas as pd
    from ewas_nb import cli
    from ewas_nb.evaluate import compare_models
    from ewas_nb.models import small_cnn
    torch.manual_seed(0)
    x, y = torch.rand(8, 1, 16, 16), torch.randint(0, 10, (8,))
    table, reports = compare_models(dict(AT=small_cnn(), EWAS=small_cnn()), x, y, ('clean', 'pgd20'), (), checks=True, steps=2)
    assert all(r.attrs['checks'] is not None for r in reports.values())
    curves = {k: pd.DataFrame(dict(epoch=[1], val_clean_acc=[0.1], val_pgd_acc=[0.1])) for k in reports}
    cli._save_demo(tmp_path, table, reports, curves, dict(dataset='digits', eps='8/255'))
    assert len(pd.read_csv(tmp_path/'attacks.csv')) == sum(map(len, reports.values()))


def test_torchrun_two_processes_give_the_one_process_report(tmp_path):
    "`ewas-eval` under torchrun (two gloo processes on CPU) shares the batches and writes the report one process writes."
    import pandas as pd
    (tmp_path/'user.py').write_text(USER_NET)
    _image_folder(tmp_path/'imgs', n=14)
    sys.path.insert(0, str(tmp_path))
    try: import user
    finally: sys.path.remove(str(tmp_path))
    torch.manual_seed(0)
    torch.save(user.make().state_dict(), tmp_path/'w.pt')
    args = ['--model', 'user.py:make', '--weights', 'w.pt', '--dataset', 'folder', '--data-dir', 'imgs', '--attacks', 'clean,fgsm,pgd20,cw',
            '--batch-size', '4', '--threads', '1']   # 14 images: 4 batches, the last one short; the sanity checks add their rows
    runs = ('one', 'two')   # one process: run in this one (as `ewas-eval ...` would run it; no seconds of imports)
    for cascade in ([], ['--cascade']):
        out = lambda name: f"{name}{'-cascade' if cascade else ''}"
        opts = lambda name: [*args, *cascade, '--out', out(name), '--save-adv', f'{out(name)}.pt', '--quiet']
        status, stdout, stderr = run_script('ewas-eval', *opts('one'), cwd=tmp_path)
        assert status == 0, stderr
        r = subprocess.run([str(BIN/'torchrun'), '--standalone', '--nproc-per-node', '2', str(BIN/'ewas-eval'), *opts('two')],
                           cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        assert stdout.count('report: ') == r.stdout.count('report: ') == 1, r.stdout   # one process prints
    for sfx in ('', '-cascade'):
        one, two = (pd.read_csv(tmp_path/f'{n}{sfx}'/'report.csv').drop(columns=['time_s']) for n in runs)
        pd.testing.assert_frame_equal(one, two)
        assert one.n.eq(14).all() and len(one) == 5   # four attacks and the worst case
        pd.testing.assert_frame_equal(*(pd.read_csv(tmp_path/f'{n}{sfx}'/'per_example.csv') for n in runs))
        a, b = (torch.load(tmp_path/f'{n}{sfx}.pt', weights_only=True) for n in runs)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k] == b[k] for k in a)
        rows = [(tmp_path/f'{n}{sfx}'/'rows.jsonl').read_text().count('\n') for n in runs]
        assert rows[0] == rows[1] > 5   # rank 0 alone wrote every row (the sanity checks' rows too)


def test_grey_image_folder_channels_1(tmp_path):
    "`--channels 1`: a grey ImageFolder trains a one-channel ResNet-18 that evaluates from its checkpoint; `ewas-eval --model` takes it too."
    _image_folder(tmp_path/'imgs', n=16)   # colour files, read as grey
    status, _, err = run_script('ewas-train', '--dataset', 'folder', '--data-dir', 'imgs', '--channels', '1', '--width', '0.0625', '--epochs', '1',
                                '--batch', '4', '--steps', '1', '--val-n', '4', '--val-steps', '1', '--quiet', '--threads', '1', '--out', 'run', cwd=tmp_path)
    assert status == 0, err
    cfg = load_checkpoint(tmp_path/'run'/'last.pt')['config']
    assert cfg['channels'] == 1 and cfg['model']['in_chans'] == 1
    status, out, err = run_script('ewas-eval', 'run/last.pt', '--attacks', 'clean,pgd20', '--n', '8', '--no-checks', '--threads', '1', '--quiet', cwd=tmp_path)
    assert status == 0 and 'worst-case' in out, err
    # the user's file in a fresh process
    (tmp_path/'grey.py').write_text(USER_NET.replace('nn.Conv2d(3,', 'nn.Conv2d(1,'))
    r = subprocess.run([str(BIN/'ewas-eval'), '--model', 'grey.py:make', '--dataset', 'folder', '--data-dir', 'imgs', '--channels', '1',
                        '--attacks', 'clean', '--n', '8', '--no-checks', '--threads', '1', '--quiet'], cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # --channels 2: tests/catalogue.py
