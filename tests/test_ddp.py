"Distillation under fastai's distributed training: 2 CPU processes, gloo, torchrun; and a plain install that never needs it."
import os, subprocess, sys
from pathlib import Path
import pytest, torch
from conftest import ROOT

def test_two_process_distillation(tmp_path):
    pytest.importorskip('accelerate')
    from fastkd.data import make_fake_cifar
    fake = make_fake_cifar(tmp_path/'fake', n_train=24, n_test=4)
    env = dict(os.environ, OMP_NUM_THREADS='1', FASTKD_CACHE=str(tmp_path/'cache'))
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', '29533',
                        str(ROOT/'tests'/'ddp_worker.py'), str(tmp_path), str(fake)],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    a,b = [torch.load(tmp_path/f'rank{i}.pt', weights_only=True) for i in (0,1)]
    for k in a['student']: assert torch.equal(a['student'][k], b['student'][k]), k      # DDP kept the students equal
    for k in a['regressor']: assert torch.equal(a['regressor'][k], b['regressor'][k]), k  # and the regressors' weights
    for k in a['buffers']: assert torch.equal(a['buffers'][k], b['buffers'][k]), k        # and their BatchNorm statistics
    for col in ('kd', 'fitnet'):   # each term column is the mean over both processes, the same on each (as train_loss)
        i = a['names'].index(col)
        assert [v[i] for v in a['values']] == [v[i] for v in b['values']], col
    assert a['teacher_unchanged'] and b['teacher_unchanged']
    assert a['losses'][-1] < a['losses'][0], a['losses']

def test_ddp_is_imported_only_when_used():
    "`from fastkd.all import *` needs no accelerate and imports no DDP; `import fastkd.distributed` without it says what to install"
    code = ("import sys; sys.modules['accelerate'] = None   # as if accelerate were not installed\n"
            "from fastkd.all import *\n"
            "print('ddp modules:', [m for m in ('fastai.distributed', 'fastkd.distributed') if m in sys.modules])\n"
            "try: import fastkd.distributed\n"
            "except ImportError as e: print('ImportError:', e)")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'ddp modules: []' in r.stdout, r.stdout
    assert 'ImportError: fastkd.distributed needs' in r.stdout and '`pip install accelerate`' in r.stdout, r.stdout
