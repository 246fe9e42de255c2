"Tests of ewas_nb.evaluate: rows, worst case, sanity checks (and their flags on a masked model), files, resume after Ctrl-C, run_evaluation."
import json, warnings
import numpy as np, pandas as pd
import pytest, torch, torch.nn as nn
import ewas_nb.evaluate as ev
from ewas_nb.core import add_ewas
from ewas_nb.models import small_cnn
from ewas_nb.train import quick_train
from ewas_nb.data import load_digits_tensors
from ewas_nb.runs import eps_str, parse_eps, save_checkpoint
from ewas_nb.baselines import build_model
from ewas_nb.evaluate import (EvalSpec, ResultStore, eps_sweep, evaluate_attack, plot_eps_sweep, report_markdown,
                              robustness_report, run_evaluation, sanity_checks, worst_case_row, zero_grad_fraction)

torch.set_num_threads(1)
EPS = 24 / 255


@pytest.fixture(scope="module")
def data(digits16):
    xtr, ytr, xte, yte = digits16
    return xtr, ytr, xte[:64], yte[:64]


@pytest.fixture(scope="module")
def models(digits_models): return digits_models


class Quantized(nn.Module):
    "Deliberate gradient masking: a non-differentiable rounding of the input."
    def __init__(self, model): super().__init__(); self.model = model
    def forward(self, x): return self.model(torch.round(x * 255) / 255)


def test_eps_strings():
    assert [eps_str(e) for e in (0, 8 / 255, parse_eps('8/255'), 0.5, 1, 0.031)] == ['0', '8/255', '8/255', '0.5', '1', '0.031']
    assert abs(parse_eps('8/255') - 8 / 255) < 1e-12
    for bad in (-0.1, '-8/255', 'x', float('nan'), '1/0'):
        with pytest.raises(ValueError): EvalSpec(eps=bad)


def test_row_fields_and_eps0(models, data):
    _, _, x, y = data
    m = models['plain']
    r0 = evaluate_attack(m, x, y, 'pgd20', 0.0, progress=False)
    rc = evaluate_attack(m, x, y, 'clean', 0.0, progress=False)
    assert r0['correct'] == rc['correct'] and r0['accuracy'] == rc['accuracy']
    r = evaluate_attack(m, x, y, 'pgd20', EPS, progress=False)
    for k in ('attack', 'implementation', 'eps', 'eps_float', 'steps', 'restarts', 'n', 'seed', 'accuracy', 'time_s', 'correct', 'in_ball'):
        assert k in r
    assert (r['eps'], r['steps'], r['restarts'], r['n'], r['in_ball']) == ('24/255', 20, 1, 64, True)
    assert r['implementation'].startswith('ewas_nb')
    with torch.no_grad(): clean = (m(x).argmax(1) == y).float().mean().item()
    assert rc['accuracy'] == clean


def test_pgd_at_eps1_gives_zero(models, data):
    _, _, x, y = data
    for m in models.values():
        assert evaluate_attack(m, x, y, 'pgd20', 1.0, progress=False)['accuracy'] == 0.0


def test_worst_case_is_per_example_and(models, data):
    rows = [dict(attack='a', n=3, seed=0, eps='1/255', eps_float=1 / 255, steps=1, restarts=1, accuracy=2 / 3, time_s=1.0,
                 in_ball=True, model_hash='m', data_hash='d', correct='110'),
            dict(attack='b', n=3, seed=0, eps='1/255', eps_float=1 / 255, steps=1, restarts=1, accuracy=2 / 3, time_s=1.0,
                 in_ball=True, model_hash='m', data_hash='d', correct='011')]
    w = worst_case_row(rows)
    assert w['correct'] == '010' and abs(w['accuracy'] - 1 / 3) < 1e-12


def test_report_table_checks_and_files(models, data, tmp_path):
    _, _, x, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = robustness_report(models['ewas'], x, y, ['clean', 'fgsm', 'pgd20', 'cw', 'alc', 'fixed-mask-steer'], eps=EPS,
                               out_dir=tmp_path, progress=False, meta=dict(checkpoint='none'))
    assert list(df.attack) == ['clean', 'fgsm', 'pgd20', 'cw', 'alc', 'fixed-mask-steer', 'worst-case']
    assert df.accuracy.iloc[-1] <= df.accuracy.iloc[:-1].min()
    assert (df.checkpoint == 'none').all()
    chk = df.attrs['checks']
    assert chk.set_index('check').loc['eps=0 gives the clean accuracy', 'passed']
    assert chk.set_index('check').loc['adversarial images in the eps-ball and [0, 1]', 'passed']
    for f in ('report.md', 'report.csv', 'report.json', 'rows.jsonl', 'batches.jsonl'): assert (tmp_path / f).exists()
    js = json.loads((tmp_path / 'report.json').read_text())
    assert len(js['rows']) == 7 and len(js['checks']) == len(chk)
    csv = pd.read_csv(tmp_path / 'report.csv', dtype={'correct': str})
    assert (csv.correct.str.len() == len(x)).all()
    md = (tmp_path / 'report.md').read_text()
    assert '| attack |' in md and 'Sanity checks' in md


def test_masked_model_is_flagged(models, data):
    _, _, x, y = data
    masked = Quantized(models['plain'])
    assert zero_grad_fraction(masked, x, y) == 1.0
    with pytest.warns(UserWarning, match="sanity check\\(s\\) FAILED"):
        df = robustness_report(masked, x, y, ['clean', 'fgsm', 'pgd20'], eps=EPS, progress=False)
    failed = set(df.attrs['checks'].query('~passed').check)
    assert {"input gradients are non-zero", "PGD beats random noise"} <= failed
    assert df.set_index('attack').loc['pgd20', 'flags'].startswith('!! ')
    assert 'SANITY CHECK(S) FAILED' in report_markdown(df)
    # the same checks pass on the unmasked model
    ok = sanity_checks(models['plain'], x, y, eps=EPS)
    assert ok.passed.all(), ok[~ok.passed]


def test_resume_after_ctrl_c(models, data, tmp_path, monkeypatch):
    _, _, x, y = data
    m, calls, armed = models['plain'], [], [True]
    real = ev.make_attack
    def counting(name, *a, **k):
        atk = real(name, *a, **k)
        orig = atk.forward
        def fwd(images, labels):
            calls.append(name)
            if armed[0] and calls.count('cw') == 2: armed[0] = False; raise KeyboardInterrupt
            return orig(images, labels)
        atk.forward = fwd
        return atk
    monkeypatch.setattr(ev, 'make_attack', counting)
    kw = dict(eps=EPS, batch_size=16, out_dir=tmp_path, progress=False, checks=False)
    with pytest.raises(KeyboardInterrupt):
        robustness_report(m, x, y, ['clean', 'pgd20', 'cw'], **kw)
    assert len(ResultStore(tmp_path).rows) == 2                 # clean and pgd20 finished
    assert len(ResultStore(tmp_path).batches) == 3              # + the first batch of cw
    with open(tmp_path / 'rows.jsonl', 'a') as f: f.write('{"key": "cut off by Ctrl-')   # a half-written line
    calls.clear()
    df = robustness_report(m, x, y, ['clean', 'pgd20', 'cw'], **kw)
    assert calls == ['cw'] * 3                                  # only cw's 3 missing batches were computed
    assert len(ResultStore(tmp_path).rows) == 3                 # the cut-off line did not swallow the next record
    monkeypatch.setattr(ev, 'make_attack', real)
    ref = robustness_report(m, x, y, ['clean', 'pgd20', 'cw'], eps=EPS, batch_size=16, progress=False, checks=False)
    assert list(df.correct) == list(ref.correct)                # resumed == uninterrupted


def test_cache_not_reused_for_other_model_or_data(models, data, tmp_path):
    "A shared store keys rows by model and data: another model or slice is computed anew; a report directory holds one evaluation."
    _, _, x, y = data
    kw = dict(eps=EPS, progress=False, checks=False)
    store = ResultStore(tmp_path/'cache')
    robustness_report(models['plain'], x, y, ['pgd20'], out_dir=store, **kw)
    robustness_report(models['ewas'], x, y, ['pgd20'], out_dir=store, **kw)
    c = robustness_report(models['plain'], x[:32], y[:32], ['pgd20'], out_dir=store, **kw)
    assert len(ResultStore(tmp_path/'cache').rows) == 3 and c.n.iloc[0] == 32
    robustness_report(models['plain'], x, y, ['pgd20'], out_dir=tmp_path/'ev', **kw)
    with pytest.raises(ValueError, match="differs from this call: model_hash"):
        robustness_report(models['ewas'], x, y, ['pgd20'], out_dir=tmp_path/'ev', **kw)


def test_bad_inputs(models, data):
    _, _, x, y = data
    m = models['plain']
    with pytest.raises(ValueError, match="unknown attack 'pgd7'"): robustness_report(m, x, y, ['pgd7'], progress=False)
    with pytest.raises(ValueError, match="eps must be"): robustness_report(m, x, y, ['pgd20'], eps=-1, progress=False)
    with pytest.raises(ValueError, match="images must lie in \\[0, 1\\]"): robustness_report(m, x * 2 - 0.5, y, progress=False)
    with pytest.raises(ValueError, match="one label per image"): robustness_report(m, x, y[:3], progress=False)


def test_eps_sweep_and_plot(models, data, tmp_path):
    _, _, x, y = data
    df = eps_sweep(models, x, y, eps=(0, 12 / 255, 24 / 255, 0.5), progress=False, out_dir=tmp_path)
    assert set(df.model) == {'plain', 'ewas'} and len(df) == 8
    for _, g in df.groupby('model'):
        assert (g.sort_values('eps_float').accuracy.diff().dropna() <= 0.02).all()
    assert (tmp_path / 'eps_sweep.csv').exists()
    fig = plot_eps_sweep(df)
    assert len(fig.axes[0].lines) == 2


def test_run_evaluation_injected_and_errors(models, data, tmp_path):
    _, _, x, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = run_evaluation(None, out_dir=tmp_path, model=models['ewas'], config=dict(dataset='digits', arch='small', defense='ewas'),
                            data=(x, y), n=32, attacks='clean,pgd20', eps='24/255', progress=False)
    assert list(df.attack) == ['clean', 'pgd20', 'alc', 'alc-ce', 'bpda', 'fixed-mask', 'fixed-mask-steer', 'selector-apgd-ce', 'selector-apgd-t', 'worst-case']
    assert (df.n == 32).all() and (df.eps.iloc[1:] == '24/255').all() and (df.dataset == 'digits').all()
    with pytest.raises(FileNotFoundError, match="checkpoint not found"): run_evaluation(tmp_path / 'missing.pt')
    with pytest.raises(ValueError, match="eps must be"): run_evaluation(None, model=models['plain'], data=(x, y), eps=-0.1)
    with pytest.raises(ValueError, match="unknown protocol"): run_evaluation(None, model=models['plain'], data=(x, y), protocol='x')
    with pytest.raises(ValueError, match="n must be an integer >= 1"): run_evaluation(None, model=models['plain'], data=(x, y), n=0)


def test_run_evaluation_corrupt_checkpoint(tmp_path):
    p = tmp_path / 'bad.pt'
    p.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError) as e: run_evaluation(p, progress=False)
    assert "\n" not in str(e.value)


def test_run_evaluation_from_checkpoint(tmp_path):
    mkw = dict(arch='resnet18', defense='ewas', num_classes=10, width=0.125, in_chans=3, input_size=[3, 32, 32], lam=0.01)
    kw = {k: v for k, v in mkw.items() if k != 'arch'}
    torch.manual_seed(0)
    model = build_model('resnet18', **{**kw, 'input_size': (3, 32, 32)})
    cfg = dict(dataset='digits', data_dir=None, size=None, arch='resnet18', defense='ewas', model=mkw)
    path = tmp_path / 'ckpt.pt'
    save_checkpoint(path, dict(model=model.state_dict(), config=cfg, epoch=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = run_evaluation(path, n=16, attacks='clean,pgd20', adaptive=False, progress=False, device='cpu')
    out = tmp_path / 'ckpt_eval'
    assert (out / 'report.md').exists() and (df.checkpoint == str(path)).all() and (df.arch == 'resnet18').all()
    assert df.checkpoint_sha256.iloc[0] and (df.n == 16).all()


def test_a_changed_attack_is_recomputed_not_read_back(models, data):
    "A finished row stored under an earlier version's key is reused only if its attack's parameters are the same."
    _, _, x, y = data
    m, store, xs, ys = models['plain'], ResultStore(), x[:16], y[:16]
    r = evaluate_attack(m, xs, ys, 'pgd20-paper', EPS, steps=2, progress=False, store=store)
    legacy = ev._row_key(attack='pgd20-paper', eps=repr(EPS), seed=0, n=16, batch_size=256, model=ev.model_hash(m),
                         data=ev.tensor_hash(xs, ys), kw={'steps': 2})
    planted = '1' * 16 if r['correct'] != '1' * 16 else '0' * 16
    store.rows.clear(); store.rows[legacy] = dict(r, params=r['params'].replace('early_stop=False', 'early_stop=True'), correct=planted)
    assert evaluate_attack(m, xs, ys, 'pgd20-paper', EPS, steps=2, progress=False, store=store)['correct'] == r['correct']
    store.rows.clear(); store.rows[legacy] = dict(r, correct=planted)     # the same attack: its finished row is reused
    assert evaluate_attack(m, xs, ys, 'pgd20-paper', EPS, steps=2, progress=False, store=store)['correct'] == planted
