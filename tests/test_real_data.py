"Real CIFAR-10, where it is present (FASTKD_DATA): the loader, and the smoke preset end to end."
import json, pytest, torch
from conftest import ROOT

pytestmark = pytest.mark.slow

def test_real_cifar10_loader(real_data):
    from fastkd.data import cifar10_dls
    dls = cifar10_dls(real_data, device='cpu')
    assert [len(d.dataset) for d in dls.loaders] == [45000, 5000, 10000]
    xb,yb = dls.one_batch()
    assert xb.shape == (256,3,32,32) and yb.bincount(minlength=10).gt(0).sum() == 10

def test_smoke_suite_on_real_data(real_data, tmp_path):
    from fastkd.suite.registry import EXPERIMENTS
    from fastkd.suite.run import run_suite
    df = run_suite('smoke', seeds=[0], out=tmp_path, path=real_data, device='cpu', verbose=False)
    assert list(df.experiment) == ['teacher', *EXPERIMENTS]
    assert df.test_acc.between(0, 1).all()          # one epoch on 270 images: no accuracy claim, but real numbers
    runs = [json.loads(p.read_text()) for p in (tmp_path/'smoke'/'runs').glob('*.json')]
    assert len(runs) == len(EXPERIMENTS) and all(torch.isfinite(torch.tensor(r['history']['train_ce'])).all() for r in runs)
    assert (tmp_path/'smoke'/'figures'/'predictions.png').stat().st_size > 10_000
