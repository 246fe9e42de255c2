"""Issue 17: a model this package did not build, evaluated by one `ewas-eval --model ...` command under L-inf and L2.

A user's bare file (results/any_model/user.py: a small CNN and the user's own plain-PyTorch training loop), its state
dict (results/any_model/w.pt) and an ImageFolder (the offline 8x8 digits written as PNGs, 16x16 RGB, into
tmp/any_model_digits/ with train/ and test/) are all ewas-eval gets. It then writes, for each threat model, the report
and per_example.csv into results/any_model/{linf,l2}/ and the command's terminal output into results/any_model/{linf,l2}.log.

Usage: python experiments/any_model.py      (about two minutes on one CPU thread)"""
import shlex, subprocess, sys
from pathlib import Path
from PIL import Image
from ewas_nb.data import load_digits_tensors

OUT, DATA = Path('results/any_model'), Path('tmp/any_model_digits')
USER = '''"""A user's own model and training loop: nothing here comes from ewas_nb."""
import torch, torch.nn as nn, torch.nn.functional as F
from torchvision import datasets, transforms

def make():
    "A small CNN on 16x16 RGB images in [0, 1], 10 classes."
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 10))

def train(root, out, epochs=15, seed=0):
    "Plain training (no adversarial examples) on the ImageFolder root/train; saves the state dict to `out`."
    torch.manual_seed(seed)
    ds = datasets.ImageFolder(f"{root}/train", transforms.ToTensor())
    model, dl = make(), torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(epochs):
        for x, y in dl: opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
    torch.save(model.state_dict(), out)
'''


def write_digits(root: Path):
    "The digits as an ImageFolder: root/{train,test}/CLASS/NNNN.png (16x16, grey values in RGB files)."
    for split, train in (('train', True), ('test', False)):
        x, y = load_digits_tensors(train=train, size=16, channels=3)
        for i, (img, label) in enumerate(zip(x, y)):
            d = root/split/str(int(label)); d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(d/f"{i:04d}.png")


def run(cmd: str, log: Path):
    print('$', cmd, flush=True)
    r = subprocess.run(shlex.split(cmd), capture_output=True, text=True)
    log.write_text(f"$ {cmd}\n{r.stdout}{r.stderr}exit {r.returncode}\n")
    if r.returncode: sys.exit(f"failed: {cmd} (see {log})")


if __name__ == '__main__':
    OUT.mkdir(parents=True, exist_ok=True)
    if not (DATA/'test').exists(): write_digits(DATA)
    (OUT/'user.py').write_text(USER)
    sys.path.insert(0, str(OUT))
    import user
    if not (OUT/'w.pt').exists(): user.train(DATA, OUT/'w.pt')
    common = f"--model {OUT}/user.py:make --weights {OUT}/w.pt --dataset folder --data-dir {DATA} --n 200 --threads 1 --overwrite"
    run(f"ewas-eval {common} --eps 8/255 --out {OUT}/linf", OUT/'linf.log')
    run(f"ewas-eval {common} --norm L2 --eps 0.5 --out {OUT}/l2", OUT/'l2.log')
    for d in ('linf', 'l2'): print((OUT/d/'report.md').read_text())
