"""The bad-input catalogue of the console scripts (tests/catalogue.py): every case one `error:` line, status 2, no
traceback, and no file created or changed in the directory of an earlier run and report it runs against."""
import pytest
from catalogue import CASES, make_earlier, run_case, snapshot, verdict


@pytest.fixture(scope='module')
def earlier(tmp_path_factory):
    return make_earlier(tmp_path_factory.mktemp('earlier'))


@pytest.fixture(autouse=True)
def quiet_env(monkeypatch, tmp_path):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))   # data caches are not the user's results
    monkeypatch.setenv('OMP_NUM_THREADS', '1')


def test_catalogue_is_large():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) >= 6, len(CASES)


@pytest.mark.parametrize('kind,cmd,args,msg', CASES, ids=[f"{c[1]} {' '.join(c[2])[:60]}" for c in CASES])
def test_case(earlier, kind, cmd, args, msg):
    before = snapshot(earlier)
    status, err = run_case(cmd, args, earlier)
    v = verdict(status, err, msg)
    assert v['status'] == 2 and v['one_line'] and not v['traceback'] and v['message_ok'], (v, err[-2000:])
    assert snapshot(earlier) == before, "a failing command created or changed files"
    assert not (earlier/'pwned').exists()
