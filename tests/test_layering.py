"""House rules of the package, checked on its source: the import layering, small signatures, one PGD step, no
neighbour paths in what users read."""
import ast, inspect, importlib, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT/'ewas_nb'
# Each module may import only modules of lower layers; modules of one layer do not import each other.
LAYERS = [['core'], ['runs'], ['data'], ['models'], ['baselines'], ['attacks'], ['train', 'evaluate'], ['cli']]
LAYER = {m: i for i, ms in enumerate(LAYERS) for m in ms}


def sibling(node, module):
    "Names of ewas_nb modules that an import node imports (relative or absolute)."
    if isinstance(node, ast.ImportFrom):
        if node.level == 1 or (node.module or '').startswith('ewas_nb'):
            mod = node.module or ''
            mod = mod.split('.', 1)[1] if mod.startswith('ewas_nb.') else ('' if mod == 'ewas_nb' else mod)
            return [mod] if mod else [a.name for a in node.names if a.name in LAYER]
    elif isinstance(node, ast.Import):
        return [a.name.split('.')[1] for a in node.names if a.name.startswith('ewas_nb.')]
    return []


def imports(path):
    "(module-level sibling imports, sibling imports inside functions or classes) of one module file."
    tree = ast.parse(path.read_text())
    top = [m for node in tree.body for m in sibling(node, path.stem)]
    nested = [(m, node.lineno) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
              for node in ast.walk(fn) for m in sibling(node, path.stem)]
    return top, nested


def test_every_module_has_a_layer():
    mods = {p.stem for p in PKG.glob('*.py') if not p.stem.startswith('_')}
    assert mods == set(LAYER), mods ^ set(LAYER)


@pytest.mark.parametrize('mod', list(LAYER))
def test_imports_follow_the_layers(mod):
    top, nested = imports(PKG/f'{mod}.py')
    assert not nested, f"{mod} imports sibling modules inside functions: {nested}"
    up = [m for m in top if LAYER[m] >= LAYER[mod]]
    assert not up, f"{mod} (layer {LAYER[mod]}) imports {up}: only lower layers are allowed"


def test_the_layering_check_catches_a_violation(tmp_path):
    "The checker itself: an upward import and an import inside a function are both found."
    p = tmp_path/'data.py'
    p.write_text("from .train import fit\ndef f():\n    from ewas_nb.attacks import PGD\n")
    top, nested = imports(p)
    assert top == ['train'] and nested == [('attacks', 3)]


def public_functions():
    for mod in LAYER:
        m = importlib.import_module(f'ewas_nb.{mod}')
        for name in getattr(m, '__all__', []):
            obj = getattr(m, name)
            if inspect.isfunction(obj): yield f'{mod}.{name}', obj
            elif inspect.isclass(obj) and obj.__module__ == m.__name__:
                for k, v in vars(obj).items():
                    generated = k == '__init__' and hasattr(obj, '__dataclass_fields__')   # a settings dataclass: one declaration per field
                    if inspect.isfunction(v) and (not k.startswith('_') or k == '__init__') and not generated:
                        yield f'{mod}.{name}.{k}', v


def test_no_public_function_takes_more_than_12_parameters():
    big = {n: len(inspect.signature(f).parameters) for n, f in public_functions()
           if len([p for p in inspect.signature(f).parameters if p not in ('self', 'cls')]) > 12}
    assert not big, big


def test_the_sign_step_of_pgd_is_written_once():
    "A step of size times a gradient's sign (`alpha * g.sign()`, `torch.sign(...)`) appears once: in `attacks.pgd_ascent`."
    step = re.compile(r"\*\s*[A-Za-z_]\w*\.sign\(\)|torch\.sign\(")
    hits = [(p.name, i + 1) for p in PKG.glob('*.py') for i, l in enumerate(p.read_text().splitlines()) if step.search(l)]
    assert len(hits) == 1 and hits[0][0] == 'attacks.py', hits


def test_train_module_size():
    assert len((PKG/'train.py').read_text().splitlines()) <= 400


def test_no_neighbour_paths_for_users():
    "The package, its notebooks and the README speak of the user's machine, not of this repository's neighbours."
    files = [*PKG.glob('*.py'), *(ROOT/'nbs').glob('*.ipynb'), ROOT/'README.md']
    bad = [str(p.relative_to(ROOT)) for p in files if re.search(r"\.\./shared|shared/data|shared/PAPER", p.read_text())]
    assert not bad, bad
