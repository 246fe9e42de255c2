"Tests of ewas_nb.models: registry, parameter counts, EWAS sites, and a smoke test over every registered model."
import time
import pytest, torch
from ewas_nb.core import add_ewas, aux_layers, bypass_aux, Inserted, EWAS
from ewas_nb.models import (MODELS, SMALL_WIDTH, Normalize, count_params, create_model, list_models, register,
                            resnet18, wrn34_10)


def create(name, ewas=False, lam=0.01, **kw):
    "A registered model, with EWAS at its default site (as `baselines.build_model(name, defense='ewas')`) if asked."
    m = create_model(name, **kw)
    return add_ewas(m, m.default_sites['ewas'], m.num_classes, m.input_size, lam=lam) if ewas else m


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("ewas", [False, True])
def test_smoke_every_model(name, ewas):
    m = create(name, width=SMALL_WIDTH.get(name), ewas=ewas)
    assert m.input_size == (3, 32, 32) and m.num_classes == 10
    x = torch.rand(2, *m.input_size, requires_grad=True)
    out = m(x)
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert len(aux_layers(m)) == int(ewas)
    assert set(m.default_sites) == {'ewas', 'cas', 'cifs'}
    for sites in m.default_sites.values():
        for s in sites: m.get_submodule(s)  # every default site names a real submodule


def test_registry():
    assert {'resnet18', 'wrn34_10'} <= set(list_models())
    assert list_models() == sorted(MODELS)
    with pytest.raises(ValueError, match=r"unknown model 'nope'; valid names: .*resnet18.*wrn34_10"):
        create_model('nope')


def test_register_decorator():
    @register
    def _tiny_test_model(num_classes=10, width=None, in_chans=3, input_size=None):
        return resnet18(num_classes=num_classes, width=0.125, in_chans=in_chans, input_size=input_size)
    try:
        assert '_tiny_test_model' in list_models()
        assert create_model('_tiny_test_model', num_classes=3)(torch.rand(1, 3, 32, 32)).shape == (1, 3)
    finally:
        MODELS.pop('_tiny_test_model')


def test_none_kwargs_ignored():
    m = create_model('resnet18', width=None, mean=None, std=None, input_size=None)
    assert count_params(m) == 11_173_962
    assert m.normalize.mean.flatten().tolist() == pytest.approx([0.4914, 0.4822, 0.4465])


def test_resnet18_param_count():
    m = create_model('resnet18')
    assert count_params(m) == 11_173_962
    assert [n for n, _ in m.named_buffers() if n.startswith('normalize')] == ['normalize.mean', 'normalize.std']


def test_resnet18_ewas_adds_alc():
    m = create('resnet18', ewas=True)
    assert isinstance(m.layer4[0], Inserted)
    ew = aux_layers(m)[0]
    assert isinstance(ew, EWAS) and ew.shape == (512, 4, 4) and ew.num_classes == 10 and ew.aux_weight == 0.01
    assert count_params(m) - 11_173_962 == 512 * 4 * 4 * 10 + 10 == 81_930


def test_resnet18_width():
    m = create_model('resnet18', width=0.25)
    assert [m.conv1.out_channels, m.layer2[0].conv1.out_channels, m.layer4[1].conv2.out_channels] == [16, 32, 128]
    assert m.linear.in_features == 128
    assert aux_layers(create('resnet18', width=0.25, ewas=True, lam=0.1))[0].aux_weight == 0.1


def test_wrn34_10_count_and_sites():
    t0 = time.perf_counter()
    m = create_model('wrn34_10')
    assert count_params(m) == 46_160_474
    assert count_params(m.block1) == 2_102_112  # the size of TRADES' unused sub_block1
    assert [len(m.block1.layer), len(m.block2.layer), len(m.block3.layer)] == [5, 5, 5]
    assert m.block3.layer[0].conv1.out_channels == 640
    assert m.default_sites == {'ewas': ['block3.layer.1'], 'cas': ['block3.layer.4'],
                               'cifs': ['block3.layer.3', 'block3.layer.4']}
    m.eval()
    with torch.no_grad(): out = m(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert time.perf_counter() - t0 < 30


def test_wrn_ewas_shape():
    m = create('wrn34_10', width=1, ewas=True)
    assert isinstance(m.block3.layer[1], Inserted)
    assert aux_layers(m)[0].shape == (64, 8, 8)


def test_wrn34_10_ewas_shape_full_width():
    m = create('wrn34_10', ewas=True)
    ew = aux_layers(m)[0]
    assert ew.shape == (640, 8, 8)
    assert count_params(m) - 46_160_474 == 640 * 8 * 8 * 10 + 10


def test_bypass_gives_plain_logits():
    m = create('resnet18', width=0.25, ewas=True).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad(), bypass_aux(m):
        a = m(x)
    m2 = create_model('resnet18', width=0.25).eval()
    sd = {k.replace('layer4.0.0.', 'layer4.0.'): v for k, v in m.state_dict().items() if '.1.alc.' not in k}
    m2.load_state_dict(sd)
    with torch.no_grad():
        torch.testing.assert_close(m2(x), a)


def test_in_chans_input_size_and_norm():
    m = create('resnet18', width=0.25, in_chans=1, input_size=(1, 28, 28), num_classes=5, ewas=True)
    assert m.input_size == (1, 28, 28)
    assert m.normalize.mean.flatten().tolist() == [0.5]
    assert m(torch.rand(2, 1, 28, 28)).shape == (2, 5)
    assert aux_layers(m)[0].shape == (128, 4, 4) and aux_layers(m)[0].num_classes == 5
    w = create_model('wrn34_10', width=1, in_chans=1, mean=(0.1307,), std=(0.3081,))
    assert w.input_size == (1, 32, 32) and w(torch.rand(2, 1, 32, 32)).shape == (2, 10)


def test_input_in_pixel_units():
    m = create_model('resnet18', width=0.25, mean=(0.,), std=(1.,)).eval()  # the official code: no normalisation
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(m.normalize(x), x)


@pytest.mark.parametrize("kw, msg", [
    (dict(input_size=(3, 32)), "input_size must be (C, H, W)"),
    (dict(in_chans=1, input_size=(3, 32, 32)), "C = in_chans = 1"),
    (dict(in_chans=1, mean=(0.1, 0.2, 0.3)), "mean/std need 1 or in_chans=1 values"),
    (dict(width=0), "width must be positive"),
    (dict(mean=(0.5, 0.5, 0.5), std=(0., 1., 1.)), "std must be positive"),
])
def test_bad_arguments(kw, msg):
    with pytest.raises(ValueError) as e:
        create_model('resnet18', **kw)
    assert msg in str(e.value) and '\n' not in str(e.value)


def test_normalize():
    n = Normalize((0.5,), (0.25,))
    assert list(n.parameters()) == []
    torch.testing.assert_close(n(torch.full((1, 3, 2, 2), 0.75)), torch.ones(1, 3, 2, 2))
    with pytest.raises(ValueError, match="same length"):
        Normalize((0.5, 0.5), (0.5,))


def test_dtype_follows_model():
    m = create_model('resnet18', width=0.125).to(torch.float64)
    x = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    assert m(x).dtype == torch.float64
