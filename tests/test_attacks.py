"Tests of ewas_nb.attacks: the atk(images, labels) contract for every attack, eps=0 / eps=1, BPDA, modes, seeds, CAS/CIFS."
import copy
import pytest, torch, torch.nn as nn, torch.nn.functional as F
import torchattacks
from ewas_nb.core import add_ewas, aux_layers, use_labels
from ewas_nb.attacks import (ATTACKS, PGD, BPDA, FixedMasks, adaptive_attacks, cw_margin, make_attack, paper_ce_loss,
                             surrogate_masks)
from ewas_nb.runs import eval_mode, seeded
from ewas_nb.models import small_cnn
from ewas_nb.data import load_digits_tensors

torch.set_num_threads(1)
EPS = 24 / 255


@pytest.fixture(scope="module")
def data(digits16):
    xtr, ytr, xte, yte = digits16
    return xtr, ytr, xte[:48], yte[:48]


@pytest.fixture(scope="module")
def models(digits_models): return digits_models


def acc(model, x, y):
    with torch.no_grad(): return (model(x).argmax(1) == y).float().mean().item()


def quick(name):  # small budgets so every attack runs in a second
    return dict(steps=3, n_queries=30) if 'autoattack' in name else dict(steps=3)


def in_ball(adv, x, eps):
    return bool((adv - x).abs().max() <= eps + 1e-6) and bool(adv.min() >= 0) and bool(adv.max() <= 1)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_every_attack_respects_ball_and_range(models, data, name):
    _, _, x, y = data
    m = models['ewas']
    atk = make_attack(name, m, eps=EPS, seed=0, num_classes=10, source=models['plain'], **quick(name))   # (source: the transfer attack's)
    adv = atk(x[:16], y[:16])
    assert adv.shape == x[:16].shape and not adv.requires_grad
    assert in_ball(adv, x[:16], EPS if name != 'clean' else 0.0)


@pytest.mark.parametrize("name", [n for n in ATTACKS if 'autoattack' not in n])
def test_eps0_gives_clean_accuracy(models, data, name):
    _, _, x, y = data
    m = models['ewas']
    adv = make_attack(name, m, eps=0.0, seed=0, steps=3, source=models['plain'])(x, y)
    assert torch.equal(adv, x)
    assert acc(m, adv, y) == acc(m, x, y)


@pytest.mark.parametrize("which", ["plain", "ewas", "random"])
def test_pgd_eps1_fools_everything(models, data, which):
    _, _, x, y = data
    torch.manual_seed(0)
    m = models[which] if which != "random" else small_cnn().eval()
    adv = PGD(m, eps=1.0, steps=20, seed=0)(x, y)
    assert acc(m, adv, y) == 0.0


def test_early_stop_never_weaker_than_last_iterate(models, data):
    _, _, x, y = data
    m = models['plain']
    a_es = acc(m, PGD(m, eps=EPS, seed=0)(x, y), y)
    a_li = acc(m, PGD(m, eps=EPS, seed=0, early_stop=False)(x, y), y)
    assert a_es <= a_li


def test_restarts_never_weaker(models, data):
    _, _, x, y = data
    m = models['plain']
    assert acc(m, PGD(m, eps=EPS, seed=0, restarts=3)(x, y), y) <= acc(m, PGD(m, eps=EPS, seed=0)(x, y), y)


def test_modes_flags_and_rng_restored(models, data):
    _, _, x, y = data
    m = copy.deepcopy(models['ewas']).train()
    m.block1.eval()
    modes = [mod.training for mod in m.modules()]
    torch.manual_seed(3); ref = torch.rand(4)
    torch.manual_seed(3)
    a1 = PGD(m, eps=EPS, steps=3, seed=7)(x[:8], y[:8])
    assert torch.equal(torch.rand(4), ref)                      # caller's RNG untouched
    assert [mod.training for mod in m.modules()] == modes       # every module's mode restored
    assert all(p.requires_grad for p in m.parameters())
    a2 = PGD(m, eps=EPS, steps=3, seed=7)(x[:8], y[:8])
    assert torch.equal(a1, a2)                                  # seeded: reproducible
    def boom(model, xx, yy): raise RuntimeError("boom")
    with pytest.raises(RuntimeError): PGD(m, eps=EPS, steps=3, loss=boom)(x[:8], y[:8])
    assert [mod.training for mod in m.modules()] == modes and all(p.requires_grad for p in m.parameters())


def test_autoattack_seeded_and_rng_untouched(models, data):
    _, _, x, y = data
    m = models['plain']
    torch.manual_seed(1); ref = torch.rand(3)
    torch.manual_seed(1)
    a1 = make_attack('autoattack', m, eps=EPS, seed=0, steps=3, n_queries=20)(x[:12], y[:12])
    assert torch.equal(torch.rand(3), ref)
    a2 = make_attack('autoattack', m, eps=EPS, seed=0, steps=3, n_queries=20)(x[:12], y[:12])
    assert torch.equal(a1, a2)
    assert make_attack('autoattack', m).steps == 100          # reference budgets by default
    assert make_attack('autoattack-ta', m).steps == 10        # torchattacks' own AutoAttack


def test_bpda_forward_equals_real_forward(models, data):
    _, _, x, y = data
    m = models['ewas']
    with torch.no_grad():
        ref = m(x)
        for T in (0.1, 1.0, 10.0):
            with surrogate_masks(m, T) as layers:
                assert len(layers) == 1 and layers[0].surrogate == T
                assert torch.equal(m(x), ref)
    assert aux_layers(m)[0].surrogate is None
    xx = x[:8].clone().requires_grad_()
    with surrogate_masks(m, 1.0): g1, = torch.autograd.grad(F.cross_entropy(m(xx), y[:8]), xx)
    g0, = torch.autograd.grad(F.cross_entropy(m(xx), y[:8]), xx)
    assert not torch.equal(g0, g1)                              # gradients do go through the mask choice


def test_paper_loss_is_ce_plus_aux(models, data):
    _, _, x, y = data
    m = models['ewas']
    l, logits = paper_ce_loss(m, x, y)
    ref = F.cross_entropy(logits, y) + 0.01 * F.cross_entropy(aux_layers(m)[0].aux_logits, y)
    assert torch.allclose(l, ref, atol=1e-6)


def test_cw_margin_matches_reference():
    z, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    onehot = F.one_hot(y, 5).float()
    real = (onehot * z).sum(1); other = ((1 - onehot) * z - onehot * 10000).max(1)[0]
    assert torch.allclose(cw_margin(z, y, 50.), -torch.clamp(real - other + 50., min=0))


def test_fixed_masks_restore_labels_and_judge_real_model(models, data):
    _, _, x, y = data
    m = models['ewas']
    adv = FixedMasks(m, eps=EPS, steps=3, steer=True, seed=0)(x, y)
    assert aux_layers(m)[0].labels is None
    assert in_ball(adv, x, EPS)


def test_adaptive_attacks_on_plain_model_refuse(models, data):
    _, _, x, y = data
    assert adaptive_attacks(models['plain']) == []
    for name in ('alc', 'bpda', 'fixed-mask'):
        with pytest.raises(ValueError, match="does not apply|no defence layers"):
            make_attack(name, models['plain'], eps=EPS, steps=2)(x[:4], y[:4])


def test_make_attack_errors_and_options(models):
    with pytest.raises(ValueError, match="unknown attack 'pgd'; valid:"): make_attack('pgd', models['plain'])
    a = make_attack('pgd20', models['plain'], eps=8 / 255, steps=7, restarts=2, nonsense=1)
    assert (a.steps, a.restarts) == (7, 2) and abs(a.alpha - 2 / 255) < 1e-9
    assert make_attack('cw', models['plain']).steps == 30
    assert make_attack('fgsm-paper', models['plain'], eps=0.1).alpha == 0.1
    assert make_attack('fgsm', models['plain']).implementation == f"torchattacks {torchattacks.__version__} FGSM"


def test_pgd_works_inside_torchattacks_multiattack(models, data):
    _, _, x, y = data
    m = models['plain']
    multi = torchattacks.MultiAttack([PGD(m, eps=EPS, steps=3, seed=0), torchattacks.FGSM(m, eps=EPS)])
    assert in_ball(multi(x[:8], y[:8]), x[:8], EPS)


@pytest.mark.parametrize("defense", ["cas", "cifs"])
def test_adaptive_attacks_on_cas_and_cifs(data, defense):
    from ewas_nb import baselines
    _, _, x, y = data
    torch.manual_seed(0)
    m = baselines.add_defense(small_cnn(), defense, num_classes=10, input_size=(1, 16, 16), after=['block1', 'block2']).eval()
    names = adaptive_attacks(m)
    assert ('bpda' in names) == (defense == 'cas')
    for name in names + ['pgd20-paper', 'cw-paper']:
        adv = make_attack(name, m, eps=EPS, seed=0, steps=2)(x[:8], y[:8])
        assert in_ball(adv, x[:8], EPS)
    assert all(l.labels is None for l in aux_layers(m))
    if defense == 'cas':
        with torch.no_grad():
            ref = m(x[:8])
            with surrogate_masks(m, 1.0): assert torch.equal(m(x[:8]), ref)
