"Tests of ewas_nb.baselines that are awkward in the notebook: attacks, no_grad/inference_mode, checkpoints, WRN, devices."
import copy, io
import pytest, torch, torch.nn.functional as F
from ewas_nb.baselines import CAS, CIFS, DEFENSES, add_defense, build_model, defense_keywords
from ewas_nb.core import aux_layers, aux_loss, bypass_aux, use_labels, remove_aux

torch.set_num_threads(1)
W = 1/8  # ResNet-18 width for speed

def _net(defense, **kw):
    torch.manual_seed(0)
    return build_model('resnet18', defense, width=W, **kw).eval()

@pytest.fixture(scope='module')
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(4, 3, 32, 32, generator=g), torch.tensor([1, 5, 0, 9])

@pytest.mark.parametrize('defense', list(DEFENSES))
def test_input_gradient_like_an_attack(defense, batch):
    "PGD's step: frozen parameters, eval mode, input requiring grad, loss CE + aux_loss; finite non-zero gradient."
    net, (x, y) = _net(defense), batch
    for p in net.parameters(): p.requires_grad_(False)
    xa = x.clone().requires_grad_()
    loss = F.cross_entropy(net(xa), y) + (aux_loss(net, y) if aux_layers(net) else 0)
    g, = torch.autograd.grad(loss, xa)
    assert torch.isfinite(g).all() and g.abs().sum() > 0

@pytest.mark.parametrize('defense', list(DEFENSES))
def test_training_attack_with_labels(defense, batch):
    "Training-time PGD: labels in force, train mode, parameters trainable; the input gradient exists and no parameter grads leak."
    net, (x, y) = _net(defense), batch
    net.train()
    xa = x.clone().requires_grad_()
    with use_labels(net, y): out = net(xa)
    g, = torch.autograd.grad(F.cross_entropy(out, y) + aux_loss(net, y), xa)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())

@pytest.mark.parametrize('defense', ['cas', 'cifs'])
def test_same_output_under_no_grad_and_inference_mode(defense, batch):
    net, (x, _) = _net(defense), batch
    ref = net(x).detach()
    with torch.no_grad(): a = net(x)
    with torch.inference_mode(): b = net(x)
    torch.testing.assert_close(a, ref); torch.testing.assert_close(b.clone(), ref)
    assert not a.requires_grad

def test_cifs_mask_has_no_input_path():
    "CIFS's relevance is taken on a detached copy: the mask is constant for the input gradient."
    torch.manual_seed(0)
    layer, z = CIFS((6, 2, 2), 4, probe='nonlinear', hidden=5), torch.randn(3, 6, 2, 2)
    zz = z.clone().requires_grad_()
    g, = torch.autograd.grad(layer(zz).sum(), zz)
    m = layer.channel_mask(z, None).detach()
    torch.testing.assert_close(g, m.expand_as(z))

def test_cifs_training_step_double_backward(batch):
    "create_graph=True: the backward differentiates through the relevance gradient (second order) without error."
    net, (x, y) = _net('cifs'), batch
    net.train()
    with use_labels(net, y): out = net(x)
    (F.cross_entropy(out, y) + aux_loss(net, y)).backward()
    for l in aux_layers(net): assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in l.parameters())

def test_cas_surrogate_same_value_other_gradient():
    torch.manual_seed(0)
    layer, z = CAS((5, 3, 3), 4), torch.randn(6, 5, 3, 3)
    zz = z.clone().requires_grad_()
    hard = layer(zz); g_hard, = torch.autograd.grad(hard.sum(), zz)
    layer.surrogate = 1.0
    soft = layer(zz); g_soft, = torch.autograd.grad(soft.sum(), zz)
    torch.testing.assert_close(soft, hard)
    assert not torch.allclose(g_soft, g_hard)

@pytest.mark.parametrize('defense', list(DEFENSES))
def test_state_dict_round_trip(defense, batch):
    "A checkpoint of a defended model loads (weights_only) into a freshly built one and gives the same logits."
    net, (x, _) = _net(defense), batch
    for l in aux_layers(net):  # make the auxiliary parameters differ from a fresh build
        for p in l.parameters(): p.data.add_(0.1)
    buf = io.BytesIO(); torch.save(net.state_dict(), buf); buf.seek(0)
    torch.manual_seed(123)
    fresh = build_model('resnet18', defense, width=W).eval()
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    with torch.no_grad(): torch.testing.assert_close(fresh(x), net(x))

@pytest.mark.parametrize('defense,n,kinds', [('ewas', 1, None), ('cas', 1, None), ('cifs', 2, ['nonlinear', 'linear'])])
def test_wrn_default_sites(defense, n, kinds):
    torch.manual_seed(0)
    net = build_model('wrn34_10', defense, width=1).eval()
    x = torch.rand(2, 3, 32, 32)
    layers = aux_layers(net)
    assert len(layers) == n and net(x).shape == (2, 10)
    if defense in ('cas', 'cifs'): assert sum(l.aux_weight for l in layers) == pytest.approx(2.0)
    if kinds: assert [l.kind for l in layers] == kinds
    with torch.no_grad(), bypass_aux(net): ref = net(x)
    with torch.no_grad(): torch.testing.assert_close(remove_aux(net)(x), ref)

def test_paper_totals_for_three_sites():
    "With three CAS/CIFS layers the weights are β/3 each, so aux_loss = β · mean of their cross-entropies."
    import torchvision
    y = torch.tensor([0, 3])
    for d in ('cas', 'cifs'):
        torch.manual_seed(0)
        net = add_defense(torchvision.models.resnet18(num_classes=10), d, after=['layer3.1', 'layer4.0', 'layer4.1'], beta=3.0)
        with use_labels(net, y): net(torch.rand(2, 3, 32, 32))
        ls = aux_layers(net)
        assert [l.aux_weight for l in ls] == [1.0, 1.0, 1.0]
        torch.testing.assert_close(aux_loss(net, y), 3.0 * sum(F.cross_entropy(l.aux_logits, y) for l in ls) / 3)

def test_keywords_routing_and_errors():
    net = build_model('resnet18', 'cifs', width=W, temperature=0.5, probes='linear', mean=(0.5,), std=(0.25,), lam=None)
    assert [l.temperature for l in aux_layers(net)] == [0.5, 0.5] and [l.kind for l in aux_layers(net)] == ['linear', 'linear']
    assert net.normalize.std.flatten().tolist() == [0.25]
    assert defense_keywords('cas') == ['beta', 'surrogate']
    with pytest.raises(ValueError, match="unknown defense 'trades'; valid: none, ewas, cas, cifs"): build_model('resnet18', 'trades')
    with pytest.raises(ValueError, match="defense 'cas' takes no lam"): build_model('resnet18', 'cas', width=W, lam=0.1)
    with pytest.raises(ValueError, match="unknown model"): build_model('vgg99', 'cas')
    with pytest.raises(ValueError, match="CIFS expects activations of shape"): CIFS((4, 2, 2), 3)(torch.rand(2, 5, 2, 2))
    with pytest.raises(ValueError, match="num_classes must be at least 2"): CIFS((4, 2, 2), 1)

def test_site_as_string_and_other_input_size():
    import torchvision
    net = add_defense(torchvision.models.resnet18(num_classes=7), 'cas', num_classes=7, input_size=(3, 64, 64), after='layer3')
    assert len(aux_layers(net)) == 1 and aux_layers(net)[0].aux_weight == 2.0
    assert net(torch.rand(2, 3, 64, 64)).shape == (2, 7)

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('defense', list(DEFENSES))
def test_cuda(defense):
    torch.manual_seed(0)
    net = build_model('resnet18', 'none', width=W).cuda()
    add_defense(net, defense)
    x, y = torch.rand(4, 3, 32, 32, device='cuda'), torch.tensor([1, 2, 3, 4], device='cuda')
    assert all(p.is_cuda for p in net.parameters())
    net.train()
    with use_labels(net, y): out = net(x)
    (F.cross_entropy(out, y) + aux_loss(net, y)).backward()
    net.eval()
    with torch.no_grad(): assert net(x).shape == (4, 10)
