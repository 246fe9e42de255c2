"""Issue 16: run the bad-input catalogue of the console scripts (tests/catalogue.py) and write what each case gave.
Writes results/robustness/catalogue.csv (one row per case) and catalogue.md (counts by class).
Usage: python experiments/bad_input_catalogue.py            (about a minute; needs no data but the offline digits)"""
import collections, os, sys, tempfile
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tests'))
import pandas as pd
from catalogue import CASES, make_earlier, run_case, snapshot, verdict

def _table(t) -> list:
    return ["| " + " | ".join(map(str, t.columns)) + " |", "|" + "---|" * len(t.columns)] + \
           ["| " + " | ".join(map(str, r)) + " |" for r in t.itertuples(index=False)]

def main():
    out = ROOT/'results'/'robustness'
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(XDG_CACHE_HOME=str(Path(tmp)/'cache'), OMP_NUM_THREADS='1')
        d = make_earlier(Path(tmp)/'earlier')
        rows = []
        for kind, cmd, args, msg in CASES:
            before = snapshot(d)
            status, err = run_case(cmd, args, d)
            v = verdict(status, err, msg)
            rows.append(dict(kind=kind, command=' '.join([cmd, *args]), **v, files_changed=snapshot(d) != before,
                             code_ran=(d/'pwned').exists()))
    df = pd.DataFrame(rows)
    df['ok'] = (df.status == 2) & df.one_line & ~df.traceback & df.message_ok & ~df.files_changed & ~df.code_ran
    df.to_csv(out/'catalogue.csv', index=False)
    by = df.groupby('kind').agg(cases=('ok', 'size'), exit_2=('status', lambda s: int((s == 2).sum())),
                                one_line=('one_line', 'sum'), tracebacks=('traceback', 'sum'), files_changed=('files_changed', 'sum'),
                                expected_message=('message_ok', 'sum'))
    md = ["# Bad-input catalogue of the console scripts", "",
          f"Written by `python experiments/bad_input_catalogue.py` ({len(df)} cases from `tests/catalogue.py`; "
          "`tests/test_catalogue.py` asserts each). Every case runs against a directory holding a finished run and its report; "
          "'files changed' compares the hashes and times of every file in it before and after.", "",
          *_table(by.reset_index()), "",
          f"Total: {len(df)} cases, {int(df.ok.sum())} as required (exit 2, one `error:` line with the expected message, "
          f"no traceback, no file created or changed), {int(df.traceback.sum())} tracebacks, {int(df.files_changed.sum())} with files changed."]
    (out/'catalogue.md').write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0 if df.ok.all() else 1

if __name__ == '__main__': sys.exit(main())
