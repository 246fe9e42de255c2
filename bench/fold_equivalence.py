"""Does folding batch norm into the convolutions (`runs.folded_batchnorm`, the training attack's default) change what
the attack computes? ResNet-18 x1/4 + EWAS after layer4.0, random weights with batch-norm statistics from five
train-mode passes, a random batch of 32: the training objective's input gradient with and without folding, then the
PGD-10 images (eps 8/255, step 2/255, same seeded start) folded against apart, and, for scale, the same attack in the
two memory layouts (NCHW against channels_last, both apart), a change already accepted as equivalent.

Usage: python bench/fold_equivalence.py        (one thread, ~20 s)"""
import contextlib, copy
import torch
from ewas_nb.models import create_model
from ewas_nb.core import add_ewas, use_labels
from ewas_nb.train import perturb
from ewas_nb.attacks import training_objective
from ewas_nb.runs import eval_mode, folded_batchnorm

CL = torch.channels_last


def attack(model, x, y, fold):
    torch.manual_seed(1)
    with use_labels(model, y, attack=True):
        return perturb(model, x, y, training_objective(model, True), eps=8/255, alpha=2/255, steps=10, start='uniform', fold_bn=fold)


def grad(model, x, y, fold):
    xx, obj = x.clone().requires_grad_(), training_objective(model, True)
    with use_labels(model, y, attack=True), eval_mode(model):
        with (folded_batchnorm(model, x) if fold else contextlib.nullcontext()):
            v, _ = obj(model, xx, y)
        g, = torch.autograd.grad(v, xx)
    return v.item(), g


if __name__ == '__main__':
    torch.set_num_threads(1); torch.manual_seed(0)
    m = add_ewas(create_model('resnet18', width=0.25), 'layer4.0', num_classes=10, input_size=(3, 32, 32), lam=0.01)
    x, y = torch.rand(32, 3, 32, 32), torch.randint(0, 10, (32,))
    with torch.no_grad(), use_labels(m.train(), y):
        for _ in range(5): m(torch.rand(32, 3, 32, 32))
    (v0, g0), (v1, g1) = grad(m, x, y, False), grad(m, x, y, True)
    print(f"objective apart {v0:.7f}, folded {v1:.7f}; input gradient: relative difference {((g0 - g1).norm() / g0.norm()).item():.1e}, "
          f"signs that differ {(g0.sign() != g1.sign()).float().mean().item():.2%}, median |g| {g0.abs().median().item():.1e}")
    ref = attack(m, x, y, False)
    differ = lambda a: f"{((a - ref).abs() > 1e-6).float().mean().item():.1%} of the pixels differ"
    print(f"PGD-10, folded against apart: {differ(attack(m, x, y, True))}; apart, run twice: {differ(attack(m, x, y, False))}")
    mc = copy.deepcopy(m).to(memory_format=CL)
    print(f"PGD-10, channels_last against NCHW (both apart): {differ(attack(mc, x.contiguous(memory_format=CL), y, False))}")
