"""A user's own model and training loop: nothing here comes from ewas_nb."""
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
