"Tests of ewas_nb.data: digits, image folders and their cache, CIFAR-10/SVHN errors, loaders, augmentation, take."
import io, os, time, urllib.error, warnings
from pathlib import Path
import numpy as np, pytest, torch, torch.nn.functional as F
from PIL import Image
import ewas_nb.data as data
from torch.utils.data import DataLoader
from ewas_nb.data import (CIFAR10_CLASSES, DATASETS, DIGIT_CLASSES, ImageTensorDataset, dataset_info, decode_images, get_dataset,
                          load_folder_tensors, random_crop_flip, split_dir, take)

# A CIFAR-10 copy laid out as an ImageFolder, named by EWAS_DATA (tools/test sets it where the project keeps one)
SHARED = Path(os.environ['EWAS_DATA']) if os.environ.get('EWAS_DATA') else None
needs_shared = pytest.mark.skipif(not (SHARED and SHARED.is_dir()), reason="no CIFAR-10 ImageFolder copy: set EWAS_DATA")


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    "Every test writes its caches to a fresh temporary directory."
    monkeypatch.setenv('EWAS_NB_CACHE', str(tmp_path / 'cache'))


ORIG_CACHE = os.environ.get('EWAS_NB_CACHE')


@pytest.fixture
def shared_cache(monkeypatch):
    "The shared CIFAR-10 copy uses the user's cache (as the notebook does): decoded once per machine, not per run."
    if ORIG_CACHE is None: monkeypatch.delenv('EWAS_NB_CACHE')
    else: monkeypatch.setenv('EWAS_NB_CACHE', ORIG_CACHE)


def one_line(e): return '\n' not in str(e.value)


def make_folder(root, sizes=None, n=3, classes=('cat', 'dog'), splits=('train', 'test')):
    "A tiny ImageFolder tree of random PNGs: root/<split>/<class>/<k>.png."
    rng = np.random.default_rng(0)
    for s in splits:
        for c in classes:
            d = Path(root) / s / c if s else Path(root) / c
            d.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                h, w = (sizes or {}).get((s, c, k), (8, 8))
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d / f"{k}.png")
    return Path(root)


# ---------------------------------------------------------------- digits
def test_digits_split_and_format():
    tr, te = get_dataset('digits'), get_dataset('digits', train=False)
    assert (len(tr), len(te)) == (1437, 360)
    x, y = te[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and isinstance(y, int)
    assert 0 <= float(te.images.min()) and float(x.max()) <= 1
    allc = torch.bincount(torch.cat([tr.targets, te.targets]))
    assert ((torch.bincount(te.targets) - 0.2 * allc).abs() <= 1).all()  # stratified 80/20
    assert torch.equal(get_dataset('digits', train=False).images, te.images)  # deterministic
    assert tr.classes == [str(i) for i in range(10)] and tr.flip is False


def test_digits_options():
    ds = get_dataset('digits', size=16, channels=1)
    assert ds.input_size == (1, 16, 16)
    assert get_dataset('digits', size=None).input_size == (3, 32, 32)  # None kwargs keep defaults
    with pytest.raises(ValueError, match="channels must be 1 or 3") as e:
        get_dataset('digits', channels=2)
    assert one_line(e)


# ---------------------------------------------------------------- augmentation
def test_random_crop_flip_identity_and_shapes():
    x = torch.rand(5, 3, 8, 8)
    assert torch.equal(random_crop_flip(x, pad=0, flip=False), x)
    out = random_crop_flip(x, pad=0, flip=True, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(o, xi) or torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x))
    u = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    assert random_crop_flip(u).dtype == torch.uint8 and random_crop_flip(u).shape == u.shape


def test_random_crop_flip_windows_and_flip_rate():
    x = torch.rand(400, 1, 6, 6) + 1
    g = torch.Generator().manual_seed(0)
    out = random_crop_flip(x, pad=2, flip=True, generator=g)
    padded = F.pad(x, (2,) * 4)
    n_flipped = 0
    for o, p in zip(out[:100], padded[:100]):
        wins = [p[:, i:i + 6, j:j + 6] for i in range(5) for j in range(5)]
        plain = any(torch.equal(o, w) for w in wins)
        flipped = any(torch.equal(o, w.flip(-1)) for w in wins)
        assert plain or flipped
        n_flipped += flipped and not plain
    assert 30 < n_flipped < 70


def test_random_crop_flip_seeded():
    x = torch.rand(8, 3, 32, 32)
    a = random_crop_flip(x, generator=torch.Generator().manual_seed(3))
    b = random_crop_flip(x, generator=torch.Generator().manual_seed(3))
    c = random_crop_flip(x, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_dataset_level_augment():
    ds = get_dataset('digits', train=False, augment=True)
    torch.manual_seed(0); a = ds[3][0]
    torch.manual_seed(0); b = ds[3][0]
    assert torch.equal(a, b) and a.shape == (3, 32, 32)
    x, _ = take(ds, 5)  # take never augments
    assert torch.equal(x, take(get_dataset('digits', train=False), 5)[0])


# ---------------------------------------------------------------- loading batches (the one path: the data set augments, a DataLoader batches)
def _first(dl): return next(iter(dl))

def _loader(seed, n=None, augment=True, bs=32, workers=0):
    ds = get_dataset('digits', augment=augment)
    if n: ds = ds.subset(torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:n])
    torch.manual_seed(seed)
    return DataLoader(ds, batch_size=bs, shuffle=True, num_workers=workers, generator=torch.Generator().manual_seed(seed))


def test_batches_deterministic_given_seed():
    a, b, c = _loader(5), _loader(5), _loader(6)
    torch.manual_seed(5); xa, ya = _first(a)
    torch.manual_seed(5); xb, yb = _first(b)
    torch.manual_seed(5); xc, yc = _first(c)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(ya, yc)


def test_subset_and_no_augmentation():
    plain = _loader(0, n=300, augment=False, bs=100)
    assert len(plain.dataset) == 300 and len(plain) == 3
    ys = torch.cat([y for _, y in plain])
    assert sorted(ys.tolist()) == sorted(plain.dataset.targets.tolist())
    x, y = next(iter(DataLoader(plain.dataset, batch_size=100)))
    assert torch.equal(x, plain.dataset.images[:100].float() / 255)


def test_no_flip_for_digits():
    tr = _loader(0, n=50, bs=50)
    assert tr.dataset.flip is False
    x, y = _first(tr)
    padded = F.pad(tr.dataset.images.float() / 255, (4,) * 4)
    for k in range(10):
        cand = padded[tr.dataset.targets == y[k]]
        assert any((x[k] == cand[:, :, i:i + 32, j:j + 32]).all(dim=(1, 2, 3)).any() for i in range(9) for j in range(9))


# ---------------------------------------------------------------- take
def test_take():
    ds = get_dataset('digits', train=False)
    x, y = take(ds, 50, seed=0)
    assert x.shape == (50, 3, 32, 32) and y.shape == (50,) and y.dtype == torch.long
    x2, y2 = take(ds, 50, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(take(ds, 50, seed=1)[1], y)
    xs, ys = take(torch.utils.data.Subset(ds, range(len(ds))), 50, seed=0)  # generic path: same slice
    assert torch.equal(xs, x) and torch.equal(ys, y)
    assert len(take(ds)[0]) == 360 and len(take(ds, 10_000)[0]) == 360


# ---------------------------------------------------------------- errors
def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; valid names: digits, cifar10, svhn, folder") as e:
        get_dataset('mnist')
    assert one_line(e)


def test_cifar10_missing_no_download(tmp_path):
    root = tmp_path / 'nope'
    with pytest.raises(FileNotFoundError) as e:
        get_dataset('cifar10', root=root, download=False)
    msg = str(e.value)
    assert one_line(e) and f"CIFAR-10 not found in {root} (download=False)" in msg
    assert "--dataset folder --data-dir YOUR_IMAGEFOLDER" in msg and "--dataset digits" in msg and "shared" not in msg
    assert not root.exists()  # nothing created


def test_cifar10_download_fails(tmp_path, monkeypatch):
    import torchvision
    class NoNet:
        def __init__(self, *a, **kw): raise urllib.error.URLError("[Errno -2] Name or service not known")
    monkeypatch.setattr(torchvision.datasets, 'CIFAR10', NoNet)
    with pytest.raises(FileNotFoundError, match="download failed: <urlopen error .*Name or service not known>") as e:
        get_dataset('cifar10', root=tmp_path / 'c10')
    assert one_line(e)


def test_svhn_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="SVHN not found in") as e:
        get_dataset('svhn', root=tmp_path / 'nope', train=False, download=False)
    assert one_line(e)


def test_folder_missing():
    with pytest.raises(FileNotFoundError, match="no image folder at /nonexistent/imgs") as e:
        get_dataset('folder', root='/nonexistent/imgs')
    assert one_line(e)
    with pytest.raises(ValueError, match="dataset 'folder' needs a root") as e:
        get_dataset('folder')
    assert one_line(e)


def test_folder_empty(tmp_path):
    (tmp_path / 'e' / 'cls').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no images in") as e:
        get_dataset('folder', root=tmp_path / 'e')
    assert one_line(e)


# ---------------------------------------------------------------- image folders
def test_folder_splits(tmp_path):
    root = make_folder(tmp_path / 'f', n=3)
    tr, te = get_dataset('folder', root), get_dataset('folder', root, train=False)
    assert (len(tr), len(te)) == (6, 6) and tr.classes == ['cat', 'dog'] and tr.input_size == (3, 8, 8)
    assert tr.targets.tolist() == [0, 0, 0, 1, 1, 1]
    assert not torch.equal(tr.images, te.images)
    flat = make_folder(tmp_path / 'flat', splits=(None,))
    assert split_dir(flat, True) == split_dir(flat, False) == flat
    only_train = make_folder(tmp_path / 'ot', splits=('train',))
    with pytest.raises(FileNotFoundError, match="has no test or val/ split folder"):
        get_dataset('folder', only_train, train=False)
    val = make_folder(tmp_path / 'v', splits=('train', 'val'))
    assert len(get_dataset('folder', val, train=False)) == 6


def test_folder_pixels_exact(tmp_path):
    root = make_folder(tmp_path / 'f', n=1, classes=('a', 'b'), splits=(None,))
    arr = np.asarray(Image.open(root / 'a' / '0.png'))
    ds = get_dataset('folder', root)
    assert torch.equal(ds.images[0], torch.from_numpy(arr.copy()).permute(2, 0, 1))
    grey = get_dataset('folder', root, channels=1)
    assert grey.input_size == (1, 8, 8)


def test_folder_sizes(tmp_path):
    root = make_folder(tmp_path / 'f', sizes={('train', 'dog', 1): (10, 12)}, splits=('train',))
    with pytest.raises(ValueError, match="differ in size .*pass size=N") as e:
        get_dataset('folder', root)
    assert one_line(e)
    assert get_dataset('folder', root, size=16).input_size == (3, 16, 16)
    assert dataset_info('folder', root, train=True, size=16)['input_size'] == (3, 16, 16)


def test_folder_cache(tmp_path):
    root = make_folder(tmp_path / 'f', n=4)
    cache = Path(os.environ['EWAS_NB_CACHE'])
    a = load_folder_tensors(root, train=False)
    files = sorted(cache.glob('*.pt'))
    assert len(files) == 1 and not list(cache.glob('*.tmp'))  # written atomically, no leftovers
    b = load_folder_tensors(root, train=False)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    # a changed file changes the key: rebuilt, not served stale
    f = root / 'test' / 'cat' / '0.png'
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(f)
    os.utime(f, ns=(time.time_ns(), time.time_ns() + 10**9))
    c = load_folder_tensors(root, train=False)
    assert c[0][0].sum() == 0 and len(sorted(cache.glob('*.pt'))) == 2
    # a corrupt cache file is ignored and rewritten
    newest = max(cache.glob('*.pt'), key=lambda p: p.stat().st_mtime_ns)
    newest.write_bytes(b'garbage')
    d = load_folder_tensors(root, train=False)
    assert torch.equal(d[0], c[0])
    assert torch.load(newest, weights_only=True)['images'].shape == (8, 3, 8, 8)
    # cache=False neither reads nor writes
    for p in cache.glob('*.pt'): p.unlink()
    load_folder_tensors(root, train=False, cache=False)
    assert not list(cache.glob('*.pt'))


def test_cifar10_name_accepts_image_folder(tmp_path):
    root = make_folder(tmp_path / 'f', classes=CIFAR10_CLASSES, n=1)
    ds = get_dataset('cifar10', root, train=False, download=False)
    assert ds.classes == sorted(CIFAR10_CLASSES) == list(CIFAR10_CLASSES) and ds.flip is True


def test_options_checked(tmp_path):
    with pytest.raises(ValueError, match=r"dataset 'cifar10' takes no option size=64; it takes: none \(3x32x32 images\)") as e:
        get_dataset('cifar10', size=64)
    assert one_line(e)
    with pytest.raises(ValueError, match="dataset 'digits' takes no option cache=False; it takes: size, channels"):
        get_dataset('digits', cache=False)
    with pytest.raises(ValueError, match="dataset 'svhn' takes no option channels=1"):
        dataset_info('svhn', channels=1)
    assert dataset_info('cifar10', size=32, channels=3, cache=None)['input_size'] == (3, 32, 32)  # no-ops are fine
    with pytest.raises(ValueError, match="size must be a positive integer"):
        get_dataset('digits', size=0)
    root = make_folder(tmp_path / 'f', n=1)
    assert get_dataset('svhn', root, size=16, cache=False).input_size == (3, 16, 16)  # a folder root takes folder options


def test_cifar10_root_with_other_data_is_not_a_folder(tmp_path):
    (tmp_path / 'MNIST' / 'raw').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found in"):
        get_dataset('cifar10', tmp_path, download=False)
    flat = make_folder(tmp_path / 'flat', classes=CIFAR10_CLASSES, n=1, splits=(None,))
    assert len(get_dataset('cifar10', flat, download=False)) == 10


def test_dataset_info():
    assert dataset_info('cifar10') == dict(num_classes=10, input_size=(3, 32, 32), classes=list(CIFAR10_CLASSES))
    assert dataset_info('svhn')['classes'] == [str(i) for i in range(10)]
    assert dataset_info('digits', size=16, channels=1)['input_size'] == (1, 16, 16)
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_info('nope')
    assert set(DATASETS) == {'digits', 'cifar10', 'svhn', 'folder'}


# ---------------------------------------------------------------- unreadable images, too few classes
def _jpeg(value=128):
    b = io.BytesIO(); Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(b, 'JPEG'); return b.getvalue()


BAD = {'cat/garbage.jpg': b'\xff\xd8 garbage bytes' * 8, 'cat/empty.png': b'', 'dog/cut.jpg': _jpeg()[:-40],
       'dog/text.png': b'this is text, not a PNG\n'}
NAMED = ("cat/empty.png (empty file), cat/garbage.jpg (cannot identify image), dog/cut.jpg (truncated), "
         "dog/text.png (cannot identify image)")


def bad_folder(root, n=3, bad=BAD, classes=('cat', 'dog')):
    "make_folder's train/ and test/ splits (n PNGs and one JPEG per class), with the `bad` files in train/."
    root = make_folder(root, n=n, classes=classes)
    for c in classes: (root / 'train' / c / 'x.jpg').write_bytes(_jpeg(40 * (1 + classes.index(c))))
    for name, data in bad.items():
        (root / 'train' / name).parent.mkdir(parents=True, exist_ok=True)
        (root / 'train' / name).write_bytes(data)
    return root.resolve()


def test_bad_images_all_named_in_one_line(tmp_path):
    root = bad_folder(tmp_path / 'f')
    d = root / 'train'
    with pytest.raises(ValueError) as e:
        get_dataset('folder', root)
    assert one_line(e) and str(e.value) == (f"4 unreadable image(s) in {d}: {NAMED}; "
                                            "fix or remove them, or pass --skip-bad-images to leave them out")
    assert not list(Path(os.environ['EWAS_NB_CACHE']).glob('*.pt'))  # nothing cached
    with pytest.raises(ValueError) as e:  # decode_images itself, without a root: full paths
        decode_images([d / 'dog' / 'cut.jpg', d / 'cat' / '0.png', d / 'cat' / 'empty.png'])
    assert one_line(e) and str(e.value).startswith(f"2 unreadable image(s): {d}/dog/cut.jpg (truncated), {d}/cat/empty.png (empty file); ")
    assert len(get_dataset('folder', root, train=False, cache=False)) == 6  # the clean split is unaffected


def test_bad_images_skipped_labels_aligned(tmp_path):
    root = bad_folder(tmp_path / 'f')
    with pytest.warns(UserWarning) as w:
        ds = get_dataset('folder', root, cache=False, skip_bad=True)
    msgs = [str(m.message) for m in w if 'unreadable' in str(m.message)]
    assert msgs == [f"skipped 4 unreadable image(s) in {root / 'train'}: {NAMED}"]
    assert len(ds) == 8 and ds.targets.tolist() == [0] * 4 + [1] * 4 and ds.classes == ['cat', 'dog']
    for c in ('cat', 'dog'):  # each kept image sits next to its own label
        k = ds.classes.index(c)
        first = np.asarray(Image.open(root / 'train' / c / '0.png'))
        assert torch.equal(ds.images[ds.targets == k][0], torch.from_numpy(first.copy()).permute(2, 0, 1))
        x = ds.images[ds.targets == k][-1].float()  # x.jpg: a flat grey whose value tells the class
        assert abs(x.mean().item() - 40 * (1 + k)) < 3
    imgs, kept = decode_images(sorted((root / 'test').glob('*/*.png')), skip_bad=True)  # nothing bad: no warning, all kept
    assert kept == list(range(6)) and len(imgs) == 6


def test_bad_images_skip_is_cached_and_warns_again(tmp_path):
    root = bad_folder(tmp_path / 'f')
    cache = Path(os.environ['EWAS_NB_CACHE'])
    for _ in range(2):
        with pytest.warns(UserWarning, match="skipped 4 unreadable image"):
            x, y, _ = load_folder_tensors(root, skip_bad=True)
        assert len(x) == len(y) == 8
    assert len(list(cache.glob('*.pt'))) == 1
    with pytest.raises(ValueError, match="4 unreadable image"):  # the key holds skip_bad: not served the skipped tensors
        load_folder_tensors(root)


def test_skip_bad_through_every_folder_name(tmp_path):
    root = make_folder(tmp_path / 'c10', classes=CIFAR10_CLASSES, n=1)
    (root / 'train' / 'cat' / 'bad.jpg').write_bytes(b'nope')
    with pytest.raises(ValueError, match=r"1 unreadable image\(s\) in .*cat/bad.jpg \(cannot identify image\)"):
        get_dataset('cifar10', root, download=False, cache=False)
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        assert len(get_dataset('cifar10', root, download=False, cache=False, skip_bad=True)) == 10
    digits = make_folder(tmp_path / 'svhn', classes=DIGIT_CLASSES, n=1, splits=('test',))
    (digits / 'test' / '3' / 'empty.png').write_bytes(b'')
    with pytest.warns(UserWarning, match="empty file"):
        assert len(get_dataset('svhn', digits, train=False, download=False, cache=False, skip_bad=True)) == 10
    assert dataset_info('folder', root, skip_bad=True)['num_classes'] == 10
    assert len(get_dataset('digits', train=False, skip_bad=False)) == 360  # skipping nothing: a no-op for every data set
    with pytest.raises(ValueError, match="dataset 'svhn' takes no option skip_bad=True") as e:
        get_dataset('svhn', tmp_path / 'nope', skip_bad=True)
    assert one_line(e)


def test_one_class_refused(tmp_path):
    one = make_folder(tmp_path / 'one', classes=('cat',))
    msg = f"{(one / 'train').resolve()} has images of only 1 class (cat); a classifier needs at least two"
    for f in (lambda: get_dataset('folder', one, cache=False), lambda: dataset_info('folder', one)):
        with pytest.raises(ValueError) as e:
            f()
        assert one_line(e) and str(e.value) == msg
    # two class folders, but every dog is unreadable: refused once they are skipped
    root = bad_folder(tmp_path / 'f', bad={'dog/cut.jpg': _jpeg()[:-40]}, classes=('cat',))
    with pytest.warns(UserWarning, match="skipped 1 unreadable"), pytest.raises(ValueError, match=r"has images of only 1 class \(cat\)") as e:
        get_dataset('folder', root, cache=False, skip_bad=True)
    assert one_line(e)
    assert dataset_info('folder', root)['num_classes'] == 2  # dataset_info does not decode: it counts files per class


def test_dataset_info_bad_images(tmp_path):
    root = bad_folder(tmp_path / 'f', bad={'cat/0.png': b'', 'cat/00.png': b'junk'})  # the first two files are unreadable
    assert dataset_info('folder', root) == dict(num_classes=2, input_size=(3, 8, 8), classes=['cat', 'dog'])
    none = tmp_path / 'none' / 'train'
    for name in ('cat/a.png', 'dog/b.jpg'): (none / name).parent.mkdir(parents=True, exist_ok=True); (none / name).write_bytes(b'')
    with pytest.raises(ValueError, match="2 unreadable image") as e:
        dataset_info('folder', none.parent)
    assert one_line(e)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="has no readable images"):
        dataset_info('folder', none.parent, skip_bad=True)


# ---------------------------------------------------------------- the shared CIFAR-10 JPEG copy
@needs_shared
def test_shared_cifar10_jpeg_test_split(shared_cache):
    t0 = time.perf_counter()
    ds = get_dataset('folder', SHARED, train=False)
    t_first = time.perf_counter() - t0
    assert len(ds) == 10_000
    assert ds.images.shape == (10_000, 3, 32, 32) and ds.images.dtype == torch.uint8
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.bincount(ds.targets).tolist() == [1000] * 10
    assert tuple(ds.classes) == CIFAR10_CLASSES
    t0 = time.perf_counter()
    again = get_dataset('folder', SHARED, train=False)
    t_cached = time.perf_counter() - t0
    assert torch.equal(again.images, ds.images)
    assert t_cached < 3, f"cached load took {t_cached:.2f} s (first {t_first:.2f} s)"
    assert dataset_info('folder', SHARED) == dataset_info('cifar10')
    # the same tree through the name 'cifar10'
    assert torch.equal(get_dataset('cifar10', SHARED, train=False).targets, ds.targets)


@needs_shared
def test_shared_cifar10_jpeg_train_split(shared_cache):
    te, full = get_dataset('folder', SHARED, train=False), get_dataset('folder', SHARED, augment=True)
    assert len(te) == 10_000 and len(full) == 20_000 and torch.bincount(full.targets).tolist() == [2000] * 10
    x, y = _first(DataLoader(full.subset(range(2000)), batch_size=256, shuffle=True))
    assert x.shape == (256, 3, 32, 32) and full.flip is True
