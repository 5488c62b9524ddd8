"""fastkd on every fastai task, never silently wrong: dense (segmentation) logits, multi-label, regression, the teacher's own
classes and preprocessing, resume from checkpoints, compiled / bf16 / TorchScript models, batches of one, a teacher that is
the student, plain numbers, warm-up across fits, two callbacks of one kind (issue 16). Tiny synthetic data, a second each."""
import copy, warnings
import numpy as np, pytest, torch, torch.nn as nn, torch.nn.functional as F
from fastai.learner import Learner
from fastai.callback.core import Callback
from fastai.callback.tracker import SaveModelCallback
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.losses import CrossEntropyLossFlat, BCEWithLogitsLossFlat, MSELossFlat, L1LossFlat
from fastai.optimizer import Adam, SGD
import fastai.callback.schedule
from fastai.torch_core import set_seed
from fastkd.all import *
from fastkd.losses import binary_kd_loss
from fastkd.test_utils import synth_dls, tiny_pair, n_hooks

def _fit(learn, *args, method='fit', **kw):
    with learn.no_bar(), learn.no_logging(): return getattr(learn, method)(*args, **kw)

def _clean(learn, teacher):
    assert n_hooks(teacher) == 0 and n_hooks(learn.model) == 0
    assert not learn.__dict__.get('_fastkd_runners') and '_fastkd_student' not in learn.__dict__

class _Cap(Callback):
    "Keeps the first training batch's student and teacher outputs, targets and the callbacks' terms"
    order = 7
    def __init__(self, cbs): self.cbs,self.got = cbs,None
    def after_loss(self):
        if self.got is None and self.training:
            self.got = dict(s=self.pred.detach().clone(), t=self.cbs[0].t_pred.detach().clone(), y=self.yb[0].clone(),
                            terms=[float(c._sum) for c in self.cbs])

def _no_step(learn, s0):
    "the student's weights are what they were: no training batch ran"
    for a,b in zip(learn.model.state_dict().values(), s0.values()): assert torch.equal(a, b)

# --- 1. dense outputs (segmentation)
def seg_dls(n=32, bs=8, c=3, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2*n, 3, size, size, generator=g)
    y = x.argmax(1)                                  # the brightest channel: learnable per pixel
    ds = list(zip(x, y))
    return DataLoaders(DataLoader(ds[:n], bs=bs, shuffle=True, drop_last=True), DataLoader(ds[n:], bs=bs), device='cpu')

def segnet(c=3, w=8, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, c, 1))

def _pixel_kd(s, t, T):
    "KD per pixel, written out: the KL over classes at each position, averaged over positions and images"
    ls,lt = F.log_softmax(s/T, 1),F.log_softmax(t/T, 1)
    return (lt.exp()*(lt - ls)).sum(1).mean() * T*T

def test_dense_logit_kd_averages_over_pixels():
    t,s = segnet(w=16, seed=1),segnet()
    cb = LogitDistillCB(t, T=2.); cap = _Cap([cb])
    learn = Learner(seg_dls(), s, loss_func=CrossEntropyLossFlat(axis=1))
    _fit(learn, 1, 0., cbs=[cb, cap])
    g = cap.got
    assert g['s'].shape == (8, 3, 16, 16) and cb.kind == 'softmax'
    torch.testing.assert_close(torch.tensor(g['terms'][0]), _pixel_kd(g['s'], g['t'], 2.), rtol=1e-5, atol=1e-6)
    _clean(learn, t)

def test_dense_standardize_over_classes():
    t,s = segnet(w=16, seed=1),segnet()
    cb = LogitDistillCB(t, T=2., standardize=True); cap = _Cap([cb])
    learn = Learner(seg_dls(), s, loss_func=CrossEntropyLossFlat(axis=1))
    _fit(learn, 1, 0., cbs=[cb, cap])
    z = lambda v: (v - v.mean(1, keepdim=True))/(1e-7 + v.std(1, keepdim=True))   # over the classes, dim 1
    torch.testing.assert_close(torch.tensor(cap.got['terms'][0]), _pixel_kd(z(cap.got['s']), z(cap.got['t']), 2.), rtol=1e-5, atol=1e-6)

@pytest.mark.parametrize('name', ['dkd', 'dist', 'nkd'])
def test_dense_logit_methods_per_pixel(name):
    t,s = segnet(w=16, seed=1),segnet()
    make = dict(dkd=lambda: DecoupledKDCB(t, beta=2., warmup=0), dist=lambda: DISTCB(t), nkd=lambda: NKDCB(t))[name]
    cb = make(); cap = _Cap([cb])
    learn = Learner(seg_dls(), s, loss_func=CrossEntropyLossFlat(axis=1))
    _fit(learn, 1, 0., cbs=[cb, cap])
    g = cap.got
    rows = lambda v: v.movedim(1, -1).reshape(-1, v.shape[1])      # each pixel a sample
    y = g['y'].reshape(-1)
    want = dict(dkd=lambda a,b: dkd_loss(a, b, y, 1., 2., 4.), dist=lambda a,b: dist_loss(a, b), nkd=lambda a,b: nkd_loss(a, b, y))[name](rows(g['s']), rows(g['t']))
    torch.testing.assert_close(torch.tensor(g['terms'][0]), want, rtol=1e-5, atol=1e-6)

def test_dense_ignore_index_leaves_pixels_out():
    t,s = segnet(w=16, seed=1),segnet()
    dls = seg_dls()
    for dl in dls.loaders:   # a void label on a quarter of the pixels, as segmentation datasets have
        dl.dataset = [(x, torch.where(torch.arange(16)[None] < 4, torch.full_like(y, 255), y)) for x,y in dl.dataset]
    cb = LogitDistillCB(t, T=2.); cap = _Cap([cb])
    learn = Learner(dls, s, loss_func=CrossEntropyLossFlat(axis=1, ignore_index=255))
    _fit(learn, 1, 0., cbs=[cb, cap])
    g = cap.got; keep = (g['y'] != 255)
    rows = lambda v: v.movedim(1, -1)[keep]
    torch.testing.assert_close(torch.tensor(g['terms'][0]), kd_loss(rows(g['s']), rows(g['t']), 2.), rtol=1e-5, atol=1e-6)

# --- 2. fastai's U-Net
def test_unet_learner():
    from fastai.vision.learner import unet_learner
    from torchvision.models import resnet18
    dls = seg_dls(n=8, bs=4, size=32)
    dls.vocab = ['r','g','b']
    torch.manual_seed(0)
    teacher = unet_learner(dls, resnet18, pretrained=False, n_out=3, loss_func=CrossEntropyLossFlat(axis=1))
    student = unet_learner(dls, resnet18, pretrained=False, n_out=3, loss_func=CrossEntropyLossFlat(axis=1))
    hooks = n_hooks(student.model),n_hooks(teacher.model)
    assert hooks[0] > 0                               # the U-Net's own hooks, which its forward needs
    cbs = [LogitDistillCB(teacher), AttentionTransferCB(teacher, ['layers.0.5'], ['layers.0.5'])]
    _fit(student, 1, 1e-3, cbs=cbs)
    assert all(len(c.history) == 1 and np.isfinite(c.history[0]) and c.history[0] > 0 for c in cbs)
    assert (n_hooks(student.model),n_hooks(teacher.model)) == hooks   # ours gone, the U-Net's kept

# --- 3. multi-label
def ml_dls(n=32, bs=8, L=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2*n, 3, 8, 8, generator=g)
    y = (x.mean((2,3))[:, [0,1,2,0]] > 0).float()    # 4 labels, several on at once
    ds = list(zip(x, y))
    return DataLoaders(DataLoader(ds[:n], bs=bs, shuffle=True, drop_last=True), DataLoader(ds[n:], bs=bs), device='cpu')

def test_multilabel_binary_kd():
    teacher,student = tiny_pair()
    cb = LogitDistillCB(teacher, T=2.); cap = _Cap([cb])
    learn = Learner(ml_dls(), student, loss_func=BCEWithLogitsLossFlat())
    _fit(learn, 1, 0., cbs=[cb, cap])
    assert cb.kind == 'sigmoid'
    g = cap.got
    torch.testing.assert_close(torch.tensor(g['terms'][0]), binary_kd_loss(g['s'], g['t'], 2.), rtol=1e-5, atol=1e-6)
    # the binary KL per label, written out
    p = lambda z: torch.sigmoid(z/2.)
    ps,pt = p(g['s']),p(g['t'])
    want = (pt*(pt/ps).log() + (1-pt)*((1-pt)/(1-ps)).log()).mean()*4
    torch.testing.assert_close(torch.tensor(g['terms'][0]), want, rtol=1e-4, atol=1e-6)
    # an explicit output= picks the form without reading the loss
    assert LogitDistillCB(teacher, output='sigmoid').output == 'sigmoid'
    with pytest.raises(ValueError, match="output='x'"): LogitDistillCB(teacher, output='x')

@pytest.mark.parametrize('make', [lambda t: DISTCB(t), lambda t: DecoupledKDCB(t), lambda t: NKDCB(t), lambda t: LogitDistillCB(t, standardize=True)])
def test_multilabel_refused_before_training(make):
    teacher,student = tiny_pair()
    learn = Learner(ml_dls(), student, loss_func=BCEWithLogitsLossFlat())
    s0 = copy.deepcopy(learn.model.state_dict())
    with pytest.raises(ValueError, match='multi-label|sigmoid'): _fit(learn, 1, 1e-2, cbs=[make(teacher)])
    _no_step(learn, s0); _clean(learn, teacher)
    assert all(p.requires_grad for p in teacher.parameters())

def test_bce_on_probabilities_refused():
    teacher,student = tiny_pair()
    learn = Learner(ml_dls(), student, loss_func=nn.BCELoss())
    with pytest.raises(ValueError, match='probabilities'): _fit(learn, 1, 1e-2, cbs=[LogitDistillCB(teacher)])

# --- 4. regression
def reg_dls(n=32, bs=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2*n, 3, 8, 8, generator=g); y = x.mean((1,2,3))[:, None]
    ds = list(zip(x, y))
    return DataLoaders(DataLoader(ds[:n], bs=bs, shuffle=True, drop_last=True), DataLoader(ds[n:], bs=bs), device='cpu')

@pytest.mark.parametrize('loss', [MSELossFlat(), L1LossFlat(), nn.MSELoss()])
def test_regression_term_is_mse_to_teacher(loss):
    teacher,student = tiny_pair(n_out=1)
    cb = LogitDistillCB(teacher); cap = _Cap([cb])
    learn = Learner(reg_dls(), student, loss_func=loss)
    _fit(learn, 1, 0., cbs=[cb, cap])
    assert cb.kind == 'regression'
    g = cap.got
    want = F.mse_loss(g['s'], g['t'])
    assert want > 1e-4
    torch.testing.assert_close(torch.tensor(g['terms'][0]), want, rtol=1e-5, atol=1e-7)

def test_regression_student_moves_towards_teacher():
    "with only the KD term (weight 1, CE-free), the student's outputs approach the teacher's"
    teacher,student = tiny_pair(n_out=1)
    learn = Learner(reg_dls(), student, loss_func=MSELossFlat())
    cb = LogitDistillCB(teacher, weight=10.)
    _fit(learn, 4, 1e-2, cbs=[cb])
    assert cb.history[-1] < cb.history[0]

@pytest.mark.parametrize('make', [lambda t: DISTCB(t), lambda t: DecoupledKDCB(t), lambda t: NKDCB(t)])
def test_regression_refused_by_class_methods(make):
    teacher,student = tiny_pair(n_out=1)
    learn = Learner(reg_dls(), student, loss_func=MSELossFlat())
    with pytest.raises(ValueError, match='regression'): _fit(learn, 1, 1e-2, cbs=[make(teacher)])
    _clean(learn, teacher)

def test_unknown_loss_with_float_targets_refused():
    teacher,student = tiny_pair(n_out=1)
    learn = Learner(reg_dls(), student, loss_func=lambda p,y: (p - y).abs().pow(1.5).mean())
    s0 = copy.deepcopy(learn.model.state_dict())
    with pytest.raises(ValueError, match="cannot tell"): _fit(learn, 1, 1e-2, cbs=[LogitDistillCB(teacher)])
    _no_step(learn, s0); _clean(learn, teacher)
    # told what the outputs are, it trains
    cb = LogitDistillCB(teacher, output='regression')
    _fit(learn, 1, 1e-2, cbs=[cb]); assert cb.kind == 'regression' and cb.history[0] > 0

def test_unknown_loss_with_class_targets_is_softmax():
    teacher,student = tiny_pair()
    learn = Learner(synth_dls(), student, loss_func=lambda p,y: F.cross_entropy(p, y))
    cb = LogitDistillCB(teacher); _fit(learn, 1, 1e-2, cbs=[cb])
    assert cb.kind == 'softmax'

def test_soft_targets_refused_by_target_methods():
    teacher,student = tiny_pair()
    dls = synth_dls()
    for dl in dls.loaders: dl.dataset = [(x, F.one_hot(y, 4).float()) for x,y in dl.dataset]
    learn = Learner(dls, student, loss_func=CrossEntropyLossFlat())
    s0 = copy.deepcopy(learn.model.state_dict())
    with pytest.raises(ValueError, match='class indices'): _fit(learn, 1, 1e-2, cbs=[DecoupledKDCB(teacher)])
    _no_step(learn, s0)

# --- 5. the teacher's classes in another order
def _learner_with_vocab(model, vocab, dls=None):
    dls = dls or synth_dls(); dls.vocab = vocab
    return Learner(dls, model, loss_func=CrossEntropyLossFlat())

def test_teacher_vocab_reordered():
    teacher,student = tiny_pair()
    tl = _learner_with_vocab(teacher, ['c','a','d','b'])
    learn = _learner_with_vocab(student, ['a','b','c','d'])
    cb = LogitDistillCB(tl); cap = _Cap([cb])
    with pytest.warns(UserWarning, match='another order'): _fit(learn, 1, 0., cbs=[cb, cap])
    xb = learn.dls.train.one_batch()[0]
    g = cap.got
    with torch.no_grad(): raw = teacher.eval()(learn.dls.train.one_batch()[0][:1])
    perm = [1, 3, 0, 2]                               # the student's a,b,c,d at the teacher's positions
    torch.testing.assert_close(torch.tensor(g['terms'][0]), kd_loss(g['s'], g['t'], 4.), rtol=1e-5, atol=1e-6)
    # the teacher's logits the term saw are its raw outputs in the student's class order
    t_sees = []
    class _T(Callback):
        order = 7
        def after_loss(self):
            if not t_sees: t_sees.append((self.xb[0].clone(), cb.t_pred.clone()))
    _fit(learn, 1, 0., cbs=[cb, _T()])
    x0,t0 = t_sees[0]
    with torch.no_grad(): raw = teacher.eval()(x0)
    torch.testing.assert_close(t0, raw[:, perm])

def test_teacher_vocab_other_classes_refused():
    teacher,student = tiny_pair()
    tl = _learner_with_vocab(teacher, ['a','b','c','e'])
    learn = _learner_with_vocab(student, ['a','b','c','d'])
    with pytest.raises(ValueError, match="classes differ"): _fit(learn, 1, 1e-2, cbs=[LogitDistillCB(tl)])
    _clean(learn, teacher)

def test_same_vocab_says_nothing():
    teacher,student = tiny_pair()
    tl,learn = _learner_with_vocab(teacher, ['a','b','c','d']),_learner_with_vocab(student, ['a','b','c','d'])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        _fit(learn, 1, 1e-2, cbs=[LogitDistillCB(tl)])

# --- 6. the teacher's own preprocessing
def _img_learner(model, size, norm):
    "a vision Learner on tiny images with fastai's Normalize and a Resize of `size` (only their settings matter here)"
    from fastai.vision.augment import Resize
    from fastai.data.transforms import Normalize
    from fastai.data.core import TfmdDL
    ds = synth_dls(size=8).train.dataset
    batch = [Normalize.from_stats([0.5]*3, [0.25]*3, cuda=False)] if norm else []
    dls = DataLoaders(*[TfmdDL(ds, bs=8, after_item=[Resize(size)], after_batch=batch) for _ in range(2)], device='cpu')
    return Learner(dls, model, loss_func=CrossEntropyLossFlat())

def test_teacher_preprocessing_warned_and_auto():
    teacher,student = tiny_pair()
    tl = _img_learner(teacher, 16, norm=True)
    learn = Learner(synth_dls(size=8), student, loss_func=CrossEntropyLossFlat())
    with pytest.warns(UserWarning, match="teacher_tfm='auto'"): _fit(learn, 1, 1e-2, cbs=[LogitDistillCB(tl)])
    seen = []
    h = teacher.register_forward_pre_hook(lambda m, i: seen.append(i[0].detach().clone()))
    cb = LogitDistillCB(tl, teacher_tfm='auto')
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        _fit(learn, 1, 1e-2, cbs=[cb])
    h.remove()
    assert seen and all(x.shape[-2:] == (16, 16) for x in seen)
    x = learn.dls.valid.one_batch()[0]
    want = (F.interpolate(x, size=(16,16), mode='bilinear', align_corners=False) - 0.5)/0.25
    torch.testing.assert_close(teacher_input(tl, learn)(x)[0], want)

def test_teacher_tfm_callable_and_bad():
    teacher,student = tiny_pair()
    learn = Learner(synth_dls(), student, loss_func=CrossEntropyLossFlat())
    seen = []
    h = teacher.register_forward_pre_hook(lambda m, i: seen.append(float(i[0].mean())))
    _fit(learn, 1, 1e-2, cbs=[LogitDistillCB(teacher, teacher_tfm=lambda x: x*0 + 7.)])
    h.remove()
    assert seen and all(abs(v - 7.) < 1e-6 for v in seen)
    with pytest.raises(TypeError, match='teacher_tfm'): LogitDistillCB(teacher, teacher_tfm=3)
    with pytest.raises(ValueError, match="teacher Learner"): LogitDistillCB(teacher, teacher_tfm='auto')

# --- 7. resume from a checkpoint: interrupted + resumed = uninterrupted
def _resume_dls():
    dls = synth_dls(n=32, bs=8)
    dls.train.shuffle = False                        # the same batches in both runs
    return dls

RESUMABLE = {
    'fitnet': lambda t: RegressorMSECB(t, ['block2'], ['block2']),
    'crd':    lambda t: CRDCB(t, 'head.1', 'head.1', nce_k=8),
    'vid':    lambda t: VIDCB(t, ['block2'], ['block2']),
    'dkd':    lambda t: DecoupledKDCB(t, warmup=3),
}

@pytest.mark.parametrize('name', list(RESUMABLE))
@pytest.mark.parametrize('opt_func', [Adam, SGD])
def test_resume_equals_uninterrupted(tmp_path, name, opt_func):
    teacher,student = tiny_pair()
    s0 = copy.deepcopy(student)
    torch.manual_seed(1)
    full = Learner(_resume_dls(), student, loss_func=CrossEntropyLossFlat(), opt_func=opt_func, path=tmp_path/'a')
    cb = RESUMABLE[name](teacher)
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)   # "Could not load the optimizer state" would fail here
        _fit(full, 4, 1e-2, cbs=[cb, SaveModelCallback(every_epoch=True, with_opt=True, fname='m')])
    assert (tmp_path/'a/models/m_1.fastkd.pth').exists()
    # a new process: new Learner, new callback, the checkpoint of epoch 1, the fit resumed at epoch 2
    torch.manual_seed(1)
    res = Learner(_resume_dls(), copy.deepcopy(s0), loss_func=CrossEntropyLossFlat(), opt_func=opt_func, path=tmp_path/'a')
    cb2 = RESUMABLE[name](teacher)
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        res.load('m_1', with_opt=True)
        _fit(res, 4, 1e-2, cbs=[cb2], start_epoch=2)
    if name == 'crd':   # CRD draws its negatives at random, and fastai's checkpoints keep no random state: close, not equal
        np.testing.assert_allclose(cb2.history, cb.history[2:], rtol=0.05)   # (restarting the heads and banks: about 2x)
        return
    np.testing.assert_allclose(cb2.history, cb.history[2:], rtol=1e-4)
    for a,b in zip(res.model.state_dict().values(), full.model.state_dict().values()): torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)

def test_resume_attached_callbacks(tmp_path):
    "callbacks attached to the Learner get their state at `learn.load`, and a plain fastai checkpoint loads into a Learner without them"
    teacher,student = tiny_pair()
    learn = Learner(synth_dls(), student, loss_func=CrossEntropyLossFlat(), path=tmp_path)
    cb = RegressorMSECB(teacher, ['block2'], ['block2']); learn.add_cb(cb)
    _fit(learn, 1, 1e-2); learn.save('m')
    sd = cb.state_dict()
    teacher2,student2 = tiny_pair(seed=3)
    l2 = Learner(synth_dls(), student2, loss_func=CrossEntropyLossFlat(), path=tmp_path)
    cb2 = RegressorMSECB(teacher, ['block2'], ['block2']); l2.add_cb(cb2)
    l2.load('m')
    _fit(l2, 1, 0.)                                   # lr 0: the loaded regressors are what the fit uses
    for k,v in cb2.state_dict().items():
        if v.is_floating_point() and 'running' not in k: torch.testing.assert_close(v, sd[k])
    plain = Learner(synth_dls(), tiny_pair(seed=4)[1], loss_func=CrossEntropyLossFlat(), path=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        plain.load('m', with_opt=True)                 # the student's checkpoint, loadable by fastai alone

def test_lr_find_leaves_no_state_file(tmp_path):
    teacher,student = tiny_pair()
    learn = Learner(synth_dls(), student, loss_func=CrossEntropyLossFlat(), path=tmp_path)
    learn.add_cb(RegressorMSECB(teacher, ['block2'], ['block2']))
    with learn.no_bar(), learn.no_logging(): learn.lr_find(num_it=5, show_plot=False)
    assert not list((tmp_path/'models').glob('*')) if (tmp_path/'models').exists() else True

# --- 8. compiled, bf16 and TorchScript models; timm's gradient checkpointing
def test_compiled_student_same_numbers():
    teacher,student = tiny_pair()
    s2 = copy.deepcopy(student)
    terms = []
    for m in (student, torch.compile(s2, backend='eager')):
        set_seed(0)
        learn = Learner(synth_dls(), m, loss_func=CrossEntropyLossFlat(), opt_func=SGD)
        cbs = [LogitDistillCB(teacher), AttentionTransferCB(teacher, ['block1','block2'], ['block1','block2'], weight=10.)]
        _fit(learn, 1, 1e-2, cbs=cbs)
        terms.append([c.history[0] for c in cbs])
        _clean(learn, teacher)
    np.testing.assert_allclose(terms[0], terms[1], rtol=1e-5)

def test_bf16_student():
    teacher,student = tiny_pair()
    class _Bf16In(nn.Module):
        def __init__(self, m): super().__init__(); self.m = m
        def forward(self, x): return self.m(x.to(torch.bfloat16))
    learn = Learner(synth_dls(), _Bf16In(student).to(torch.bfloat16), loss_func=CrossEntropyLossFlat())
    cbs = [LogitDistillCB(teacher), RegressorMSECB(teacher, ['m.block2'], ['block2'])]
    _fit(learn, 1, 1e-2, cbs=cbs)
    assert all(np.isfinite(c.history[0]) and c.history[0] > 0 for c in cbs)
    assert all(p.dtype == torch.float32 for p in cbs[1].extras.parameters())   # the regressor sees fp32 features

def test_torchscript_teacher():
    teacher,student = tiny_pair()
    ts = torch.jit.script(teacher.eval())
    learn = Learner(synth_dls(), student, loss_func=CrossEntropyLossFlat())
    cb = LogitDistillCB(ts); _fit(learn, 1, 1e-2, cbs=[cb])
    assert cb.history[0] > 0
    assert all(p.requires_grad for p in ts.parameters())   # given back as it was
    with pytest.raises(ValueError, match='TorchScript'): _fit(learn, 1, 1e-2, cbs=[AttentionTransferCB(ts, ['block2'], ['block2'])])
    _clean(learn, teacher)

def test_timm_gradient_checkpointing_says_what_to_do():
    timm = pytest.importorskip('timm')
    t,s = timm.create_model('resnet10t', pretrained=False, num_classes=4),timm.create_model('resnet10t', pretrained=False, num_classes=4)
    s.set_grad_checkpointing(True)
    learn = Learner(synth_dls(size=32), s, loss_func=CrossEntropyLossFlat())
    with pytest.raises(ValueError, match=r"'layer2' is never called.*'layer2\.0'"):
        _fit(learn, 1, 1e-2, cbs=[AttentionTransferCB(t, ['layer2'], ['layer2'])])
    _clean(learn, t)
    cb = AttentionTransferCB(t, ['layer2.0'], ['layer2'])   # a block inside the stage: called, and it trains
    _fit(learn, 1, 1e-2, cbs=[cb]); assert cb.history[0] > 0

# --- 9. a last batch of one sample
@pytest.mark.parametrize('make', [lambda t: RelationalKDCB(t, ['head.1'], ['head.1']), lambda t: PKTCB(t, ['head.1'], ['head.1']),
                                  lambda t: SimilarityCB(t, ['block2'], ['block2']), lambda t: CorrelationCB(t, ['head.1'], ['head.1']),
                                  lambda t: DISTCB(t)])
def test_batch_of_one_adds_no_term(make):
    teacher,student = tiny_pair()
    dls = synth_dls(n=17, bs=8)
    dls.train.drop_last = False                       # 8, 8, 1
    learn = Learner(dls, student, loss_func=CrossEntropyLossFlat())
    cb = make(teacher)
    with pytest.warns(UserWarning, match='batch of 1'): _fit(learn, 2, 1e-2, cbs=[cb])
    assert cb.n_skipped == 2 and len(cb.history) == 2   # one batch of 1 an epoch and all(np.isfinite(cb.history))
    _clean(learn, teacher)

# --- 10. the teacher is the student, or shares a module with it
def test_teacher_is_student_refused():
    teacher,student = tiny_pair()
    learn = Learner(synth_dls(), student, loss_func=CrossEntropyLossFlat())
    with pytest.raises(ValueError, match='the student model itself'): _fit(learn, 1, 1e-2, cbs=[LogitDistillCB(student)])
    with pytest.raises(ValueError, match='the student model itself'): _fit(learn, 1, 1e-2, cbs=[LogitDistillCB(learn)])
    shared = copy.deepcopy(teacher); shared.block1 = student.block1
    with pytest.raises(ValueError, match='shares 2 parameters|shares \\d+ parameters'): _fit(learn, 1, 1e-2, cbs=[LogitDistillCB(shared)])
    assert all(p.requires_grad for p in student.parameters())
    _clean(learn, teacher)

# --- 11. plain numbers
def test_numpy_and_tensor_scalars_accepted():
    teacher,_ = tiny_pair()
    cb = LogitDistillCB(teacher, T=np.int64(4), weight=np.float32(0.9))
    assert cb.T == 4 and isinstance(cb.weight, float) and abs(cb.weight - 0.9) < 1e-6
    assert LogitDistillCB(teacher, weight=torch.tensor(0.5)).weight == 0.5
    assert DecoupledKDCB(teacher, beta=np.float64(2.), warmup=np.int32(3)).warmup == 3
    for bad in (torch.tensor([1., 2.]), True, 'a', float('inf'), np.float32('nan')):
        with pytest.raises(ValueError, match='expected a finite number'): LogitDistillCB(teacher, weight=bad)

# --- 12. warm-up across fits, or as a fraction of the fit
class _Factor(Callback):
    order = 7
    def __init__(self, cb): self.cb,self.f = cb,[]
    def after_loss(self):
        if self.training and self.iter == 0: self.f.append(self.cb.warmup_factor)

def test_warmup_continues_across_fits():
    teacher,student = tiny_pair()
    learn = Learner(synth_dls(), student, loss_func=CrossEntropyLossFlat())
    cb = DecoupledKDCB(teacher, warmup=4); log = _Factor(cb)
    learn.add_cbs([cb, log])
    with learn.no_bar(), learn.no_logging(): learn.fine_tune(3, freeze_epochs=1)
    np.testing.assert_allclose(log.f, [0.25, 0.5, 0.75, 1.])

def test_warmup_fraction_of_the_fit():
    teacher,student = tiny_pair()
    learn = Learner(synth_dls(), student, loss_func=CrossEntropyLossFlat())
    cb = DecoupledKDCB(teacher, warmup=0.5)
    fs = []
    class _All(Callback):
        order = 7
        def after_loss(self):
            if self.training: fs.append(cb.warmup_factor)
    _fit(learn, 4, 1e-2, cbs=[cb, _All()])
    n = len(fs)                                      # 4 epochs of 4 batches
    np.testing.assert_allclose(fs[:n//2], [(i+1)/(n/2) for i in range(n//2)])
    assert all(f == 1. for f in fs[n//2:])
    assert DecoupledKDCB(teacher).warmup == pytest.approx(1/12)   # the authors' 20 of 240 epochs

# --- 13. two callbacks of one kind
def test_two_teachers_two_columns():
    t1,student = tiny_pair(); t2,_ = tiny_pair(seed=1)
    learn = Learner(synth_dls(), student, loss_func=CrossEntropyLossFlat())
    cbs = [LogitDistillCB(t1), LogitDistillCB(t2, T=2.)]
    _fit(learn, 1, 1e-2, cbs=cbs)
    assert [c.column for c in cbs] == ['kd_1', 'kd_2']
    names = learn.recorder.metric_names
    assert 'kd_1' in names and 'kd_2' in names
    cb = LogitDistillCB(t1); _fit(learn, 1, 1e-2, cbs=[cb]); assert cb.column == 'kd'

def test_dense_teacher_at_its_own_size():
    "a segmentation teacher fed its own (larger) size: its logits are resized to the student's, said once"
    t,s = segnet(w=16, seed=1),segnet()
    tfm = lambda x: F.interpolate(x, size=(32, 32), mode='bilinear', align_corners=False)
    cb = LogitDistillCB(t, T=2., teacher_tfm=tfm); cap = _Cap([cb])
    learn = Learner(seg_dls(), s, loss_func=CrossEntropyLossFlat(axis=1))
    with pytest.warns(UserWarning, match='resizes the teacher'): _fit(learn, 1, 0., cbs=[cb, cap])
    assert cap.got['t'].shape == (8, 3, 16, 16)
    torch.testing.assert_close(torch.tensor(cap.got['terms'][0]), _pixel_kd(cap.got['s'], cap.got['t'], 2.), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match='same number of classes'):
        _fit(Learner(seg_dls(), segnet(), loss_func=CrossEntropyLossFlat(axis=1)), 1, 0., cbs=[LogitDistillCB(segnet(c=4))])
