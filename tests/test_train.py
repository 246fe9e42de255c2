"""Losses, the fit loop, configs and `load_model` on tiny models (seconds)."""
import copy, math
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset
from ewas_nb.core import add_ewas, aux_layers, aux_loss, use_labels, bypass_aux, remove_aux
from ewas_nb.runs import eval_mode, load_checkpoint, save_checkpoint, check_out_dir
from ewas_nb.baselines import load_model
from ewas_nb.train import (LOSSES, TrainConfig, fit, perturb, run_training, milestone_epochs, make_scheduler, pgd_accuracy, _mart_kl)

torch.set_num_threads(1)
D = load_digits()
X, Y = torch.tensor(D.images, dtype=torch.float32)[:, None] / 16, torch.tensor(D.target)


def cnn(bn=True, ewas=True, lam=0.1):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8) if bn else nn.Identity(), nn.ReLU(),
                      nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10))
    return add_ewas(m, after='4', input_size=(1, 8, 8), lam=lam) if ewas else m


ATK = dict(eps=0.1, alpha=0.04, steps=3)


@pytest.mark.parametrize('method', list(LOSSES))
def test_loss_finite_with_grads_and_modes_restored(method):
    m = cnn(); m.train()
    loss = LOSSES[method](m, X[:32], Y[:32], **ATK)
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    assert m.training and all(p.requires_grad for p in m.parameters())
    assert all(l.labels is None for l in aux_layers(m))  # labels removed after the loss


@pytest.mark.parametrize('method', list(LOSSES))
def test_without_defence_layer_each_loss_is_the_plain_baseline(method):
    m = cnn()
    for l in aux_layers(m): l.aux_logits = None
    base = remove_aux(copy.deepcopy(m))
    torch.manual_seed(1); a = LOSSES[method](base, X[:32], Y[:32], **ATK)
    torch.manual_seed(1)
    with bypass_aux(m): b = LOSSES[method](m, X[:32], Y[:32], **ATK)
    torch.testing.assert_close(a, b)


def test_pgd_attack_uses_true_label_masks_and_combined_loss():
    "The training attack runs with the true-label masks and maximises CE + aux: it raises exactly that loss."
    m = cnn(); y = Y[:64]
    seen = []
    ew = aux_layers(m)[0]
    LOSSES['pgd'](m, X[:64], y, **ATK)   # the first call also finds the model's conv/batch-norm pairs (runs.folded_batchnorm)
    h = ew.register_forward_hook(lambda mod, i, o: seen.append(mod.labels is not None))
    torch.manual_seed(0); LOSSES['pgd'](m, X[:64], y, **ATK)
    h.remove()
    assert all(seen) and len(seen) == ATK['steps'] + 1
    obj = lambda mm, xa, yy: (F.cross_entropy(mm(xa), yy) + aux_loss(mm, yy), None)
    with use_labels(m, y):
        xa = perturb(m, X[:64], y, obj, **ATK)
        with torch.no_grad(), eval_mode(m): assert obj(m, xa, y)[0] > obj(m, X[:64], y)[0]


def test_mart_aux_kl_is_not_the_papers_zero():
    "The paper's MART code compares the aux head's adversarial softmax with itself (always 0); ours compares clean vs adv."
    s_nat, s_adv, w = torch.randn(8, 10), torch.randn(8, 10), torch.rand(8)
    assert _mart_kl(s_adv, F.softmax(s_nat, 1), w) > 0
    torch.testing.assert_close(_mart_kl(s_adv, F.softmax(s_adv, 1), w), torch.tensor(0.), atol=1e-5, rtol=0)


def test_trades_and_mart_aux_terms_reach_the_alc():
    "With the aux terms the ALC gets gradient from the KL/boost terms: it differs from aux=False."
    for method in ('trades', 'mart'):
        grads = []
        for aux in (True, False):
            m = cnn(); torch.manual_seed(0)
            LOSSES[method](m, X[:32], Y[:32], aux=aux, **ATK).backward()
            grads.append(aux_layers(m)[0].alc.bias.grad)
        assert grads[1] is None or grads[1].abs().sum() == 0  # the ALC bias only enters through the aux logits
        assert grads[0].abs().sum() > 0


def test_schedules():
    assert milestone_epochs((0.5, 0.75), 120) == [60, 90]
    assert milestone_epochs([60, 90], 120) == [60, 90]
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    s = make_scheduler(opt, 'cosine', epochs=3, steps_per_epoch=4)
    lrs = []
    for _ in range(12): lrs.append(opt.param_groups[0]['lr']); opt.step(); s.step()
    assert lrs[0] == 0.1 and all(a >= b for a, b in zip(lrs, lrs[1:])) and lrs[-1] < 0.01


def test_fit_is_deterministic_on_cpu(tmp_path):
    kw = dict(method='trades', epochs=2, batch=64, lr=0.05, val_steps=2, seed=5, progress=False, **ATK)
    ds, valid = TensorDataset(X[:256], Y[:256]), (X[-64:], Y[-64:])
    a, b = cnn(), cnn()
    da, db = fit(a, ds, valid, **kw), fit(b, ds, valid, **kw)
    assert da.drop(columns='time_s').equals(db.drop(columns='time_s'))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()): assert torch.equal(va, vb), k


@pytest.mark.parametrize('opt', [dict(bf16=True), dict(channels_last=False)])   # channels_last=True is the default
def test_fit_options_cpu(opt):
    df = fit(cnn(), TensorDataset(X[:128], Y[:128]), (X[-32:], Y[-32:]), method='pgd', epochs=1, batch=64,
             val_steps=1, progress=False, **ATK, **opt)
    assert math.isfinite(df.train_loss.iloc[0])


def test_fit_best_and_last(tmp_path):
    df = fit(cnn(), TensorDataset(X[:256], Y[:256]), (X[-64:], Y[-64:]), method='pgd', epochs=3, batch=64,
             lr=0.05, val_steps=2, progress=False, out=tmp_path, **ATK)
    best, last = load_checkpoint(tmp_path/'best.pt'), load_checkpoint(tmp_path/'last.pt')
    assert last['epoch'] == 3 and best['epoch'] == int(df.epoch[df.val_pgd_acc == df.val_pgd_acc.max()].iloc[-1])
    assert {'torch', 'numpy', 'python', 'cuda'} <= set(last['rng'][0]) and last['loader'].dtype == torch.uint8


def test_config_messages():
    cases = [(dict(method='x'), "unknown method 'x'"), (dict(arch='vgg'), "unknown arch 'vgg'"),
             (dict(dataset='mnist'), "unknown dataset 'mnist'"), (dict(defense='dropout'), "unknown defense 'dropout'"),
             (dict(eps=-0.1), "eps must be >= 0"), (dict(eps='8/0'), "eps must be a number or a fraction"), (dict(steps=0), "steps must be"),
             (dict(lam=-1), "lam must be >= 0"), (dict(milestones=[0.5, 90]), "milestones must all be"),
             (dict(dataset='folder'), "needs --data-dir"), (dict(amp=True, device='cpu'), "--amp"),
             (dict(lr=float('nan')), "lr must be a finite number"), (dict(width=float('inf')), "width must be a finite number"),
             (dict(epochs=2.5), "epochs must be an integer"), (dict(train_subset=1), "train_subset must be an integer >= 2")]
    for kw, msg in cases:
        with pytest.raises(ValueError) as e: TrainConfig(**kw)
        assert msg in str(e.value) and '\n' not in str(e.value), (kw, str(e.value))
    with pytest.raises(ValueError, match="exclude each other"): check_out_dir('x', resume=True, overwrite=True)


TINY = TrainConfig(dataset='digits', size=8, width=0.0625, epochs=1, batch=64, steps=1, train_subset=128, val_n=32,
                   val_steps=1, progress=False)


@pytest.mark.parametrize('defense,method', [('none', 'pgd'), ('ewas', 'trades'), ('cas', 'mart'), ('cifs', 'pgd')])
def test_run_training_and_load_model(tmp_path, defense, method):
    model, df = run_training(TINY, defense=defense, method=method, out=str(tmp_path/'run'))
    m2, cfg = load_model(tmp_path/'run'/'last.pt', device='cpu')
    assert (cfg['model']['arch'], cfg['model']['defense'], cfg['method'], cfg['epoch']) == ('resnet18', defense, method, 1)
    x = X[:4].expand(-1, 3, -1, -1).contiguous()
    with torch.no_grad(): torch.testing.assert_close(m2(x), model.eval()(x))
    with pytest.raises(ValueError, match="not arch 'wrn34_10'"): load_model(tmp_path/'run'/'last.pt', arch='wrn34_10')


def test_load_model_errors(tmp_path):
    save_checkpoint(tmp_path/'custom.pt', {'model': cnn().state_dict(), 'config': {}})
    with pytest.raises(ValueError, match="stores no model description"): load_model(tmp_path/'custom.pt')
    run_training(TINY, out=str(tmp_path/'run'))
    ck = load_checkpoint(tmp_path/'run'/'last.pt')
    ck['config']['model']['width'] = 0.125   # the weights no longer fit the architecture the config describes
    save_checkpoint(tmp_path/'bad.pt', ck)
    with pytest.raises(ValueError, match="weights do not fit a resnet18"): load_model(tmp_path/'bad.pt')


def test_adding_an_option_is_one_field():
    "Every TrainConfig field is a command-line option of ewas-train, with its help text, and round-trips through JSON."
    import dataclasses
    from ewas_nb.cli import _train_parser
    opts = {a.dest: a for a in _train_parser()._actions}
    for f in dataclasses.fields(TrainConfig):
        assert f.name in opts and opts[f.name].help, f.name
    c = TrainConfig(lr=0.05, milestones='2,3')
    assert TrainConfig.from_json(c.to_json()) == c


def test_pgd_accuracy_reaches_zero_at_large_eps():
    m = cnn(ewas=False)
    fit(m, TensorDataset(X[:512], Y[:512]), None, method='standard', epochs=2, batch=64, lr=0.05, progress=False)
    assert pgd_accuracy(m, X[-128:], Y[-128:], eps=0.5, alpha=0.1, steps=20) == 0.0
