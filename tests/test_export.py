"The student is the product: `learn.export()` -> `load_learner(...)` -> `predict(image)`, fastai's deployment path."
import subprocess, sys, warnings
import numpy as np, pytest, torch
from PIL import Image
from fastai.learner import Learner, load_learner
from fastai.losses import CrossEntropyLossFlat
from fastkd.data import make_fake_cifar, cifar10_dls, image_tensor
from fastkd.learner import student_learner

@pytest.fixture
def exported(tmp_path):
    "A student trained one epoch on 3 fake classes, exported to `tmp_path/student.pkl`"
    fake = make_fake_cifar(tmp_path/'fake', n_train=12, n_test=2, n_classes=3)
    dls = cifar10_dls(fake, bs=8, device='cpu', cache=False)
    learn = student_learner(dls, path=tmp_path)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 0.05)
    learn.export('student.pkl')
    return learn, tmp_path/'student.pkl', sorted((fake/'test'/'class1').glob('*.png'))

def _load(fname):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # load_learner's pickle warning
        return load_learner(fname)

def test_export_load_predict(exported):
    learn,fname,files = exported
    inf = _load(fname)
    test_dl = inf.dls.test_dl(files)
    assert len(inf.dls.train.dataset) == 0 and inf.dls.vocab == ['class0', 'class1', 'class2']
    name,idx,probs = inf.predict(files[0])
    assert name == inf.dls.vocab[int(idx)] and int(idx) == int(probs.argmax())
    assert probs.shape == (3,) and abs(float(probs.sum()) - 1) < 1e-3
    # the same probabilities as the trained learner on the same image through its own (validation) pipeline
    live = learn.get_preds(dl=learn.dls.test_dl(files[:1]))[0][0]
    torch.testing.assert_close(probs, live)
    # a PIL image, an (H,W,3) uint8 array and a (3,H,W) uint8 tensor of the file give the same answer
    for item in (Image.open(files[0]), np.asarray(Image.open(files[0])), image_tensor(files[0])):
        n2,i2,p2 = inf.predict(item)
        assert n2 == name and int(i2) == int(idx); torch.testing.assert_close(p2, probs)
    preds,_ = inf.get_preds(dl=test_dl)   # batch inference on many files
    assert preds.shape == (len(files), 3)
    torch.testing.assert_close(preds[0], probs)

def test_load_in_a_fresh_process(exported):
    "Deployment needs only fastai's `load_learner`: the pickle brings in the fastkd classes it uses, and no teacher"
    _,fname,files = exported
    code = ("import sys, warnings; warnings.simplefilter('ignore'); from fastai.learner import load_learner\n"
            "name,idx,probs = load_learner(sys.argv[1]).predict(sys.argv[2])\n"
            "print(name, int(idx), 'fastkd.distill' in sys.modules)")
    r = subprocess.run([sys.executable, '-c', code, str(fname), str(files[0])], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    name,idx,distill = r.stdout.split()[-3:]
    assert name == f'class{idx}' and distill == 'False'

def test_fastai_export_works_in_this_environment(tmp_path):
    "fastai's own export of any Learner (plum-dispatch 2.10.x broke it: `cannot pickle '_thread.RLock'`)"
    from fastai.vision.data import ImageDataLoaders
    fake = make_fake_cifar(tmp_path/'fake', n_train=2, n_test=1, n_classes=2)
    dls = ImageDataLoaders.from_folder(fake, train='train', valid='test', bs=2, num_workers=0, device='cpu')
    learn = Learner(dls, torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3*32*32, 2)),
                    loss_func=CrossEntropyLossFlat(), path=tmp_path)
    learn.export('plain.pkl')
    name,idx,probs = _load(tmp_path/'plain.pkl').predict(fake/'test'/'class1'/'0000.png')
    assert name in ('class0', 'class1') and probs.shape == (2,)
