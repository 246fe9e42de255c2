"""Clean accuracy of a checkpoint on its whole test set (no attacks, no sanity checks), saved as a report.
Usage: python experiments/clean_accuracy.py CHECKPOINT OUT_DIR"""
import sys
import torch
from ewas_nb.train import load_model
from ewas_nb.data import get_dataset, take
from ewas_nb.evaluate import robustness_report, save_report

if __name__ == '__main__':
    ck, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    model, cfg = load_model(ck, 'cpu')
    ds = get_dataset(cfg['dataset'], cfg.get('data_dir'), train=False, **({'size': cfg['size']} if cfg.get('size') else {}))
    x, y = take(ds)
    df = robustness_report(model, x, y, attacks=('clean',), checks=False, worst_case=False, progress=False,
                           meta=dict(checkpoint=ck))
    save_report(df, out)
    print(f"{ck}: clean accuracy {df.accuracy.iloc[0]:.4f} on {len(y)} test images")
