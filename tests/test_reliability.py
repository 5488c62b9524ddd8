"Reliability: interrupted runs resume, nothing is half-counted, results are deterministic, NaN runs are recorded as failed."
import json, os, random, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from conftest import ROOT

@pytest.fixture
def fake(tmp_path):
    from fastkd.data import make_fake_cifar
    return make_fake_cifar(tmp_path/'fake', n_train=40, n_test=10)

def _cli(*args):
    "The `fastkd` console script of this environment"
    return [str(Path(sys.executable).parent/'fastkd'), *args]

def test_kill9_then_resume(fake, tmp_path):
    "SIGKILL `fastkd run` at a random moment, run it again: it finishes, finished runs are not redone, no file is truncated"
    out = tmp_path/'res'; env = dict(os.environ, FASTKD_CACHE=str(tmp_path/'cache'))
    args = _cli('run', '--preset', 'smoke', '--out', str(out), '--data', str(fake), '--figures', str(tmp_path/'fig'))
    p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = out/'smoke'/'runs'
    deadline = time.time() + 300                        # kill once some (not all) runs are finished
    while time.time() < deadline and len(list(runs.glob('*.json'))) < 2 and p.poll() is None: time.sleep(0.2)
    time.sleep(random.uniform(0, 1.5))
    p.send_signal(signal.SIGKILL); p.wait()
    before = {f.name: f.stat().st_mtime_ns for f in runs.glob('*.json')}
    for f in runs.glob('*.json'): json.loads(f.read_text())          # every record that exists is whole
    r = subprocess.run(args, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    after = {f.name: f.stat().st_mtime_ns for f in runs.glob('*.json')}
    from fastkd.suite.registry import EXPERIMENTS
    assert sorted(after) == sorted(f'{e}-seed0.json' for e in EXPERIMENTS)
    assert all(after[n] == t for n,t in before.items())               # no finished run redone
    assert (out/'smoke'/'summary.md').read_text().count('\n') == 2 + 1 + len(EXPERIMENTS)

def test_same_seed_same_metrics(fake, tmp_path):
    "Same seed, same machine, CPU: identical per-epoch metrics in two runs"
    from fastkd.suite.registry import PRESETS
    from fastkd.suite.run import get_teacher, run_student
    cfg = PRESETS['smoke']
    t,_ = get_teacher(fake, cfg, tmp_path/'t', device='cpu', verbose=False)
    a = run_student('combined', 3, t, fake, cfg, tmp_path/'a', device='cpu', verbose=False)
    b = run_student('combined', 3, t, fake, cfg, tmp_path/'b', device='cpu', verbose=False)
    for k in ('train_loss', 'valid_loss', 'accuracy', 'kd', 'at', 'train_ce'): assert a['history'][k] == b['history'][k], k
    assert a['test_acc'] == b['test_acc'] and a['seed'] == 3 and a['versions']['torch'] == torch.__version__

def test_nonfinite_loss_is_recorded_as_failed(fake, tmp_path, monkeypatch):
    "A run whose loss becomes non-finite stops, is recorded under failed/ with its epoch, and is not a result"
    from fastkd.suite.registry import PRESETS
    from fastkd.suite.run import get_teacher, run_student
    cfg = PRESETS['smoke']
    t,_ = get_teacher(fake, cfg, tmp_path, device='cpu', verbose=False)
    r = run_student('logit', 0, t, fake, dict(cfg, lr=1e8), tmp_path, device='cpu', verbose=False)  # diverges
    assert r['status'] == 'failed' and 'epoch 0' in r['error'] and r['epoch'] == 0
    assert (tmp_path/'failed'/'logit-seed0.json').exists() and not (tmp_path/'runs'/'logit-seed0.json').exists()

def test_teacher_checkpoint_verified(fake, tmp_path, capsys):
    "A teacher checkpoint trained with other settings, or corrupt, is retrained, never silently used"
    from fastkd.suite.registry import PRESETS
    from fastkd.suite.run import get_teacher
    cfg = PRESETS['smoke']
    get_teacher(fake, cfg, tmp_path, device='cpu', verbose=False)
    get_teacher(fake, dict(cfg, lr=0.05), tmp_path, device='cpu')
    assert 'other settings; retraining' in capsys.readouterr().out
    (tmp_path/'teacher.pth').write_bytes(b'garbage')
    get_teacher(fake, cfg, tmp_path, device='cpu')
    assert 'cannot use' in capsys.readouterr().out
    get_teacher(fake, cfg, tmp_path, device='cpu')
    assert 'reusing' in capsys.readouterr().out
