"""A catalogue of bad inputs through the Python API and the CLI: each gives one clear line (the API a ValueError,
FileNotFoundError, FileExistsError or PermissionError; the CLI `error: ...` on stderr and exit status 2) or a
documented correction, and none of them changes an earlier run's files.

Covered elsewhere (not repeated here):
  every command's options, numbers, names, files, resume contract, data ... tests/catalogue.py (tests/test_catalogue.py)
  kill -9, SIGINT/SIGTERM, full disk, read-only file system, two writers .. tests/test_faults.py
  images outside [0, 1], robustness_report ........ tests/test_evaluate.py::test_bad_inputs
  labels: wrong shape (not one per image) ......... tests/test_evaluate.py::test_bad_inputs
  labels outside [0, K) inside an EWAS layer ...... nbs/00_core.ipynb (EWAS and use_labels cells: "labels must lie in [0, K)")
  activations of the wrong shape for EWAS ......... nbs/00_core.ipynb ("EWAS expects activations of shape")
  empty image folder / missing data sets .......... tests/test_data.py::test_folder_empty, test_folder_missing, test_cifar10_missing_no_download
  eps < 0: robustness_report, run_evaluation ...... tests/test_evaluate.py::test_bad_inputs, test_run_evaluation_injected_and_errors
  eps < 0, steps 0, unknown names: TrainConfig .... tests/test_train.py::test_config_messages
  eps < 0, steps 0, unknown names, CLI ............ test_cli_bad_inputs_one_line_status_2 (below), tests/test_catalogue.py
  n < 1, unknown protocol/attack (API) ............ tests/test_evaluate.py::test_run_evaluation_injected_and_errors
  unknown attack name (make_attack) ............... tests/test_attacks.py::test_make_attack_errors_and_options
  unknown attack *options* are ignored (by design:
    options go to the attacks that take them) ..... tests/test_attacks.py::test_make_attack_errors_and_options
  missing / corrupt / unsafe checkpoint ........... tests/test_checkpoint.py::test_missing_truncated_corrupt, test_code_carrying_pickle_is_refused
  existing run dir without --resume/--overwrite ... tests/test_cli.py::test_existing_run_dir_train_resume_overwrite
  --resume of nothing, --data-dir missing (CLI) ... test_cli_bad_inputs_one_line_status_2 (below), tests/test_catalogue.py
"""
import hashlib, tempfile, warnings
from pathlib import Path
import pytest, torch
from torch.utils.data import TensorDataset
from ewas_nb.attacks import make_attack
from ewas_nb.models import small_cnn
from ewas_nb.baselines import build_model, load_model
from ewas_nb.runs import check_out_dir, load_checkpoint
from ewas_nb.evaluate import EvalSpec, robustness_report, run_evaluation
from ewas_nb.train import TrainConfig, fit, run_training, stored_config
from catalogue import run_script

torch.set_num_threads(1)
TINY = dict(dataset='digits', size=8, width=0.0625, epochs=1, batch=64, steps=1, train_subset=128, val_n=32,
            val_steps=1, progress=False)
QUICK = dict(attacks=['clean', 'pgd20'], steps=2, progress=False, checks=False)


def one_line(excinfo, *parts):
    "The exception's message is one line holding every one of `parts`."
    msg = str(excinfo.value)
    assert '\n' not in msg and all(p in msg for p in parts), msg
    return msg


def snapshot(d):
    "Every file under `d`: relative path -> (sha256, mtime_ns)."
    return {str(p.relative_to(d)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(Path(d).rglob('*')) if p.is_file()}


@pytest.fixture(scope='module')
def cnn():
    "A tiny CNN for 1x16x16 images, 10 classes, without an `input_size` attribute (untrained: only errors matter)."
    torch.manual_seed(0)
    return small_cnn().eval()


@pytest.fixture(scope='module')
def xy():
    torch.manual_seed(0)
    return torch.rand(8, 1, 16, 16), torch.arange(8)


@pytest.fixture(scope='module')
def resnet():
    "A model that declares its `input_size` (3, 8, 8)."
    torch.manual_seed(0)
    return build_model('resnet18', 'ewas', num_classes=10, width=0.0625, in_chans=3, input_size=(3, 8, 8)).eval()


@pytest.fixture
def unwritable(tmp_path):
    "A directory nobody may create files in: a chmod 555 folder, or (as root, who may write anywhere else) /sys."
    d = tmp_path/'ro'
    d.mkdir(); d.chmod(0o555)
    try:
        try:
            with tempfile.TemporaryFile(dir=d): pass
        except OSError: yield d; return
        try:
            with tempfile.TemporaryFile(dir='/sys'): pass
        except OSError: yield Path('/sys'); return
        pytest.skip("no unwritable directory on this machine")
    finally: d.chmod(0o755)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A finished tiny training run (run/) and its evaluation report (ev/): the earlier results that must survive."
    d = tmp_path_factory.mktemp('earlier')
    run_training(TINY, defense='ewas', out=str(d/'run'))
    model, cfg = load_model(d/'run'/'last.pt', device='cpu')
    robustness_report(model, torch.rand(8, *cfg['model']['input_size']), torch.arange(8), out_dir=d/'ev', **QUICK)
    return d


# ---------------------------------------------------------------- images
@pytest.mark.parametrize('value', [float('nan'), float('inf'), float('-inf')])
def test_non_finite_images(cnn, xy, value):
    x, y = xy
    bad = x.clone(); bad[3, 0, 5, 5] = value
    with pytest.raises(ValueError) as e: robustness_report(cnn, bad, y, **QUICK)
    one_line(e, "images must be finite", "1 NaN or Inf")
    with pytest.raises(ValueError) as e: make_attack('pgd20', cnn, steps=2)(bad, y)
    one_line(e, "images must be finite")
    with pytest.raises(ValueError) as e: fit(small_cnn(), TensorDataset(bad, y), None, epochs=1, batch=8, steps=1, progress=False)
    one_line(e, "images must be finite")


def test_images_outside_unit_range(cnn, xy):
    "robustness_report rejects them (tests/test_evaluate.py); so do the attacks themselves and training: no silent clipping."
    x, y = xy
    for bad in (x * 255, x - 0.5):
        with pytest.raises(ValueError) as e: make_attack('fgsm', cnn)(bad, y)
        one_line(e, "images must lie in [0, 1]")
    with pytest.raises(ValueError) as e: fit(small_cnn(), TensorDataset(x * 255, y), None, epochs=1, batch=8, steps=1, progress=False)
    one_line(e, "images must lie in [0, 1]")
    with pytest.raises(ValueError) as e: robustness_report(cnn, (x * 255).to(torch.uint8), y, **QUICK)
    one_line(e, "images must be a float tensor (N, C, H, W)", "uint8")


def test_wrong_channels_or_size(cnn, xy, resnet):
    x, y = xy
    with pytest.raises(ValueError) as e: robustness_report(cnn, x.expand(-1, 3, -1, -1), y, **QUICK)       # no input_size:
    one_line(e, "the model cannot take images of shape (3, 16, 16)")                                       # a forward tells
    with pytest.raises(ValueError) as e: make_attack('pgd20', cnn, steps=2)(x.expand(-1, 3, -1, -1), y)
    one_line(e, "the model cannot take images of shape (3, 16, 16)")
    with pytest.raises(ValueError) as e: robustness_report(resnet, torch.rand(8, 3, 16, 16), y, **QUICK)   # input_size (3, 8, 8)
    one_line(e, "images of shape (3, 16, 16)", "takes (3, 8, 8)")
    with pytest.raises(ValueError) as e: make_attack('cw', resnet, steps=2)(torch.rand(8, 1, 8, 8), y)
    one_line(e, "images of shape (1, 8, 8)", "takes (3, 8, 8)")
    with pytest.raises(ValueError) as e: robustness_report(cnn, x[0], y, **QUICK)                          # one image, no batch dim
    one_line(e, "(N, C, H, W)")
    with pytest.raises(ValueError) as e:
        fit(build_model('resnet18', num_classes=10, width=0.0625, in_chans=3, input_size=(3, 8, 8)),
            TensorDataset(torch.rand(8, 3, 16, 16), y), None, epochs=1, batch=8, steps=1, progress=False)
    one_line(e, "takes (3, 8, 8)")


# ---------------------------------------------------------------- labels
def test_labels_outside_range(cnn, xy):
    x, y = xy
    for bad, shown in ((torch.full((8,), 10), "[10, 10]"), (y - 1, "[-1, 6]")):
        with pytest.raises(ValueError) as e: robustness_report(cnn, x, bad, **QUICK)
        one_line(e, "labels must lie in [0, 10)", shown)
        with pytest.raises(ValueError) as e: make_attack('clean', cnn)(x, bad)          # 'clean' would silently score 0
        one_line(e, "labels must lie in [0, 10)")
        with pytest.raises(ValueError) as e:
            fit(small_cnn(), TensorDataset(x, bad), (x, y), epochs=1, batch=8, steps=1, progress=False)
        one_line(e, "labels must lie in [0, 10)")
    with pytest.raises(ValueError) as e: robustness_report(cnn, x, y.float(), **QUICK)
    one_line(e, "labels must be integers")


# ---------------------------------------------------------------- empty data, batch of 1
def test_empty_data(cnn, xy):
    x, y = xy
    with pytest.raises(ValueError) as e: robustness_report(cnn, x[:0], y[:0], **QUICK)
    one_line(e, "no images")
    with pytest.raises(ValueError) as e: make_attack('pgd20', cnn)(x[:0], y[:0])
    one_line(e, "no images")
    with pytest.raises(ValueError) as e: run_evaluation(None, model=cnn, data=(x[:0], y[:0]), progress=False)
    one_line(e, "no images")
    with pytest.raises(ValueError) as e: fit(small_cnn(), TensorDataset(x[:0], y[:0]), None, epochs=1, progress=False)
    one_line(e, "the training set is empty")
    with pytest.raises(ValueError) as e:  # one example: its batch of 1 is dropped (batch norm), so no batch at all
        fit(small_cnn(), TensorDataset(x[:1], y[:1]), None, epochs=1, batch=8, progress=False)
    one_line(e, "gives no batch")
    with pytest.raises(ValueError) as e: TrainConfig(train_subset=1)
    one_line(e, "train_subset must be an integer >= 2")


def test_batch_of_one(cnn, xy):
    """Documented corrections: evaluating (report, attacks) one example simply works; training (`fit`, `run_training`,
    the CLI: one `TrainConfig`) refuses `batch` < 2 up front instead of failing inside the first epoch (batch norm)."""
    x, y = xy
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        df = robustness_report(cnn, x[:1], y[:1], attacks=['clean', 'pgd20', 'cw'], steps=2, progress=False)
    assert (df.n == 1).all() and df.attrs['checks'] is not None and len(df) == 4
    adv = make_attack('pgd20', cnn, steps=2)(x[:1], y[:1])
    assert adv.shape == x[:1].shape
    with pytest.raises(ValueError) as e: fit(small_cnn(), TensorDataset(x[:4], y[:4]), (x[:2], y[:2]), epochs=1, batch=1, progress=False)
    one_line(e, "batch must be an integer >= 2")
    with pytest.raises(ValueError) as e: TrainConfig(batch=1)
    one_line(e, "batch must be an integer >= 2")


# ---------------------------------------------------------------- eps and step size
def test_eps_and_step_size_out_of_range(cnn, xy):
    "eps lies in [0, 1] (images do), the step size alpha > 0 (0 only with eps 0), steps >= 1; eps = 1 is allowed."
    x, y = xy
    for eps in (1.5, -0.1, float('nan'), float('inf')):
        with pytest.raises(ValueError) as e: make_attack('pgd20', cnn, eps=eps)
        one_line(e, "eps must be >= 0 and <= 1")
    for e_ in ('2', '300/255'):
        with pytest.raises(ValueError) as e: EvalSpec(eps=e_)
        one_line(e, "eps must be >= 0 and <= 1")
    with pytest.raises(ValueError) as e: robustness_report(cnn, x, y, eps=1.5, **QUICK)
    one_line(e, "eps must be >= 0 and <= 1")
    for alpha in (0.0, -0.01, float('inf')):
        with pytest.raises(ValueError) as e: make_attack('pgd20', cnn, eps=8/255, alpha=alpha)
        one_line(e, "step size alpha must be > 0")
    with pytest.raises(ValueError) as e: make_attack('fixed-mask', cnn, alpha=-1.0)
    one_line(e, "step size alpha must be > 0")
    with pytest.raises(ValueError) as e: make_attack('pgd20', cnn, steps=0)
    one_line(e, "steps must be an integer >= 1")
    assert make_attack('pgd20', cnn, eps=0.0).alpha == 0.0      # eps 0: the default step eps/4 = 0 is fine
    assert make_attack('pgd20', cnn, eps=1.0).eps == 1.0
    for kw in (dict(eps=1.5), dict(eps='300/255'), dict(alpha=0), dict(alpha=-1)):
        with pytest.raises(ValueError) as e: TrainConfig(**kw)
        one_line(e, "must be")
    with pytest.raises(ValueError) as e: fit(small_cnn(), TensorDataset(x, y), None, eps=2.0, progress=False)
    one_line(e, "eps must be >= 0 and <= 1")
    with pytest.raises(ValueError) as e: fit(small_cnn(), TensorDataset(x, y), None, alpha=-0.1, progress=False)
    one_line(e, "step size alpha must be > 0")


# ---------------------------------------------------------------- output directories
def test_missing_output_dir_is_created(cnn, xy, tmp_path):
    "Documented correction: a report or run directory that does not exist yet is created, parents included."
    x, y = xy
    robustness_report(cnn, x, y, out_dir=tmp_path/'a'/'b', **QUICK)
    assert (tmp_path/'a'/'b'/'report.json').exists()
    check_out_dir(tmp_path/'c'/'d')                    # validation alone creates nothing
    assert not (tmp_path/'c').exists()


def test_read_only_output_dir(cnn, xy, unwritable):
    x, y = xy
    calls = []
    real = cnn.forward
    cnn.forward = lambda *a: calls.append(1) or real(*a)
    try:
        with pytest.raises(PermissionError) as e: robustness_report(cnn, x, y, out_dir=unwritable, **QUICK)
    finally: del cnn.forward
    one_line(e, "not writable")
    assert len(calls) <= 1, "attacks ran before the report directory was found unwritable"
    with pytest.raises(PermissionError) as e: check_out_dir(unwritable/'run')
    one_line(e, "not writable")
    with pytest.raises(PermissionError) as e:
        fit(small_cnn(), TensorDataset(x, y), None, epochs=1, batch=8, steps=1, out=unwritable/'run', progress=False)
    one_line(e, "not writable")


# ---------------------------------------------------------------- unknown options
def test_unknown_option_api(cnn, xy):
    """Settings are checked by name (one ValueError line), also when given as keywords of fit, run_training or
    run_evaluation. Attack options passed to robustness_report/make_attack go to the attacks that take them (see
    tests/test_attacks.py::test_make_attack_errors_and_options)."""
    with pytest.raises(ValueError) as e: TrainConfig.make(epoch=3)
    one_line(e, "unknown option(s): epoch")
    with pytest.raises(ValueError) as e: run_training(TINY, bogus=1)
    one_line(e, "unknown option(s): bogus")
    with pytest.raises(ValueError) as e: run_evaluation(None, model=cnn, data=xy, bogus=1)
    one_line(e, "unknown option(s): bogus")
    with pytest.raises(ValueError) as e: fit(cnn, TensorDataset(*xy), None, bogus=1)
    one_line(e, "unknown option(s): bogus")


# ---------------------------------------------------------------- earlier results stay intact (API)
def test_failed_api_calls_leave_earlier_results_intact(run):
    before = snapshot(run)
    ck = load_checkpoint(run/'run'/'last.pt')
    cfg = ck['config']
    model, _ = load_model(run/'run'/'last.pt', device='cpu')
    x = torch.rand(8, *cfg['model']['input_size']); y = torch.arange(8)
    nan = x.clone(); nan[0, 0, 0, 0] = float('nan')
    # resuming (2 epochs) on NaN data: stops at the first batch, before anything in the run is rewritten
    with pytest.raises(ValueError) as e:
        fit(model, TensorDataset(nan, y), None, stored_config(ck), epochs=2, out=str(run/'run'), resume=True,
            meta={'model': cfg['model']}, device='cpu', progress=False)
    one_line(e, "images must be finite")
    opts = stored_config(ck)
    with pytest.raises(ValueError, match="batch must be"): run_training(opts, out=str(run/'run'), overwrite=True, batch=1)
    with pytest.raises(ValueError, match="eps must be"): run_training(opts, out=str(run/'run'), resume=True, eps=2)
    with pytest.raises(ValueError, match="images must be finite"): robustness_report(model, nan, y, out_dir=run/'ev', **QUICK)
    with pytest.raises(ValueError, match="eps must be"):
        run_evaluation(run/'run'/'last.pt', out_dir=run/'ev', overwrite=True, eps=2, progress=False)
    with pytest.raises(ValueError, match="images must be finite"):
        run_evaluation(run/'run'/'last.pt', out_dir=run/'ev', overwrite=True, data=(nan, y), progress=False, device='cpu')
    assert snapshot(run) == before


# ---------------------------------------------------------------- CLI
# The console scripts run in this process (catalogue.run_script), as a fresh process per case costs seconds of imports
# on a busy CPU. Separate processes: tests/test_cli.py, tests/test_faults.py and nbs/07_cli.ipynb.


def check_error(res, msg):
    "Status 2 and exactly one stderr line `error: ...` containing `msg`."
    status, out, err = res
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith('error: ') and msg in lines[0], (status, err[-2000:])


def test_cli_bad_inputs_one_line_status_2(tmp_path, unwritable):
    "Each case in a fresh empty directory, which must stay empty."
    (tmp_path/'empty_folder'/'train').mkdir(parents=True)
    (tmp_path/'empty_folder'/'test').mkdir()
    cases = [('ewas-train', ['--bogus', '1'], "unrecognized arguments: --bogus 1"),
             ('ewas-eval', ['x.pt', '--epochs', '3'], "unrecognized arguments: --epochs 3"),
             ('ewas-eval', ['--n', '3'], "give a checkpoint or --model FILE.py:FUNCTION"),
             ('ewas-demo', ['--epochs', 'two'], "invalid int value: 'two'"),
             ('ewas-train', ['--eps', '2'], "eps must be >= 0 and <= 1"),
             ('ewas-train', ['--alpha', '0'], "step size alpha must be > 0"),
             ('ewas-train', ['--batch', '1'], "batch must be an integer >= 2"),
             ('ewas-train', ['--train-subset', '1'], "train_subset must be an integer >= 2"),
             ('ewas-train', ['--lr', 'nan'], "lr must be a finite number"),
             ('ewas-train', ['--width', 'nan'], "width must be a finite number"),
             ('ewas-train', ['--threads', '-1'], "threads must be an integer >= 1"),
             ('ewas-train', ['--resume'], "--resume needs --out"),
             ('ewas-train', ['--device', 'tpu9'], "unknown device 'tpu9'"),
             ('ewas-demo', ['--data-dir', str(tmp_path/'empty_folder'), '--out', 'demo'], "no images in"),
             ('ewas-train', ['--out', str(unwritable/'run')], "not writable"),
             ('ewas-demo', ['--out', str(unwritable/'demo')], "not writable")]
    for i, (cmd, args, msg) in enumerate(cases):
        d = tmp_path/f'c{i}'; d.mkdir()
        check_error(run_script(cmd, *args, cwd=d), msg)
        assert list(d.iterdir()) == [], (cmd, args, list(d.iterdir()))


@pytest.mark.filterwarnings('ignore:.*sanity check')
def test_cli_failures_leave_earlier_results_intact(run, unwritable):
    "Failing commands aimed at an existing run and report, even with --overwrite, change none of their files."
    before = snapshot(run)
    cases = [('ewas-train', ['--out', 'run', '--overwrite', '--batch', '1'], "batch must be an integer >= 2"),
             ('ewas-train', ['--out', 'run', '--resume', '--eps', '2'], "eps must be >= 0 and <= 1"),
             ('ewas-train', ['--out', 'run', '--resume', '--bogus'], "unrecognized arguments: --bogus"),
             ('ewas-eval', ['run/last.pt', '--out', 'ev', '--overwrite', '--eps', '2'], "eps must be >= 0 and <= 1"),
             ('ewas-eval', ['run/last.pt', '--out', 'ev', '--overwrite', '--device', 'tpu9'], "unknown device 'tpu9'"),
             ('ewas-eval', ['run/last.pt', '--out', 'ev', '--overwrite', '--attacks', 'clean', '--n', '0'], "n must be an integer >= 1"),
             ('ewas-eval', ['run/last.pt', '--out', str(unwritable/'ev')], "not writable")]
    for cmd, args, msg in cases: check_error(run_script(cmd, *args, cwd=run), msg)
    assert snapshot(run) == before
    # documented correction: a report directory that does not exist yet is created (parents too); n=1 simply works
    status, out, err = run_script('ewas-eval', 'run/last.pt', '--out', 'new/deep/ev', '--n', '1', '--attacks', 'clean,pgd20',
                           '--no-adaptive', '--threads', '1', cwd=run)
    assert status == 0, err[-2000:]
    assert (run/'new'/'deep'/'ev'/'report.json').exists()
    assert {k: v for k, v in snapshot(run).items() if not k.startswith('new/')} == before
