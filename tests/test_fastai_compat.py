"""fastkd's callbacks inside the fastai workflows a user runs every day: the compatibility matrix.

Each fastai feature is tried with each distillation callback on tiny synthetic data (a second each)."""
import copy, threading, warnings
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from fastai.learner import Learner
from fastai.callback.core import Callback
from fastai.losses import CrossEntropyLossFlat
from fastai.optimizer import Adam, SGD
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.callback.training import GradientAccumulation, GradientClip
from fastai.callback.mixup import MixUp, CutMix
from fastai.callback.tracker import SaveModelCallback, EarlyStoppingCallback, ReduceLROnPlateau
from fastai.callback.fp16 import MixedPrecision
from fastai.callback.progress import CSVLogger
import fastai.callback.schedule
from fastai.metrics import accuracy
from fastkd.all import *
from fastkd.test_utils import synth_dls, tiny_pair, count_forwards, n_hooks

# --- the callbacks under test: name -> factory(teacher)
CALLBACKS = {
    'logit':     lambda t: LogitDistillCB(t, T=4., weight=.9),
    'cosine':    lambda t: FeatureCosineCB(t, ['block1','block2'], ['block1','block2']),
    'fitnet':    lambda t: RegressorMSECB(t, ['block2'], ['block2'], weight=10.),
    'attention': lambda t: AttentionTransferCB(t, ['block1','block2'], ['block1','block2'], weight=100.),
    'standardized': lambda t: LogitDistillCB(t, T=2., weight=9., standardize=True),
    'dkd':       lambda t: DecoupledKDCB(t, warmup=1),
    'dist':      lambda t: DISTCB(t),
    'nkd':       lambda t: NKDCB(t),
    'rkd':       lambda t: RelationalKDCB(t, ['head.1'], ['head.1']),
    'pkt':       lambda t: PKTCB(t, ['head.1'], ['head.1']),
    'sp':        lambda t: SimilarityCB(t, ['block2'], ['block2']),
    'nst':       lambda t: NSTCB(t, ['block2'], ['block2']),
    'cc':        lambda t: CorrelationCB(t, ['head.1'], ['head.1']),
    'vid':       lambda t: VIDCB(t, ['block1','block2'], ['block1','block2']),
    'crd':       lambda t: CRDCB(t, 'head.1', 'head.1', nce_k=16),
    'reviewkd':  lambda t: ReviewKDCB(t, ['block1','block2'], ['block1','block2'], warmup=1),
    'ofd':       lambda t: OFDCB(t, ['block1.1','block2.1'], ['block1.1','block2.1']),
    'ab':        lambda t: ABCB(t, ['block1.1','block2.1'], ['block1.1','block2.1']),
    'fsp':       lambda t: FSPCB(t, ['block2.1','block2'], ['block1.1','block1']),   # FSP needs the teacher's channels: 16 each
}
ORIGINAL = ['logit', 'cosine', 'fitnet', 'attention']
FEATURE_ONLY = [n for n,f in CALLBACKS.items() if not f(tiny_pair()[0]).uses_logits]
STATELESS_TERM = [n for n in CALLBACKS if n != 'crd']   # the term is a function of this batch's outputs (CRD's also of its memory)

def _learner(student=None, opt_func=Adam, metrics=accuracy, dls=None, **kw):
    return Learner(dls or synth_dls(), student, loss_func=CrossEntropyLossFlat(), opt_func=opt_func, metrics=metrics, **kw)

def _pair(): return tiny_pair()

def _fit(learn, *args, method='fit', **kw):
    with learn.no_bar(), learn.no_logging(): return getattr(learn, method)(*args, **kw)

def _clean(learn, teacher):
    assert n_hooks(teacher) == 0 and n_hooks(learn.model) == 0
    assert not learn.__dict__.get('_fastkd_runners') and '_fastkd_student' not in learn.__dict__
    assert not any(type(m).__name__ == '_TermMetric' for m in learn.metrics)

def _validate_quick(learn, timeout=20):
    "learn.validate() in a thread: a held lock would hang it"
    out = {}
    th = threading.Thread(target=lambda: out.setdefault('r', learn.validate()), daemon=True)
    th.start(); th.join(timeout)
    assert not th.is_alive(), 'validate() hangs (fastai lock left held)'
    return out['r']

# 1. lr_find / load, then fit with fastai's own optimizer; 5. lr_find does not keep what it trained
@pytest.mark.parametrize('name', list(CALLBACKS))
def test_lr_find_then_fit(name):
    teacher,student = _pair(); learn = _learner(student)
    cb = CALLBACKS[name](teacher); learn.add_cb(cb)
    _fit(learn, 1, 1e-2)                                    # builds any trainable extras
    before = copy.deepcopy(cb.state_dict())
    s_before = copy.deepcopy(learn.model.state_dict())
    with learn.no_bar(), learn.no_logging(): learn.lr_find(num_it=8, show_plot=False)
    for k,v in cb.state_dict().items(): assert torch.equal(v, before[k]), f'lr_find changed {k}'
    for k,v in learn.model.state_dict().items(): assert torch.equal(v, s_before[k]), k
    _fit(learn, 2, 1e-2, method='fit_one_cycle')
    assert len(cb.history) == 2 and all(h == h for h in cb.history)
    _clean(learn, teacher)

@pytest.mark.parametrize('opt_func', [Adam, SGD])
def test_fit_after_load_with_regressor(tmp_path, opt_func):
    teacher,student = _pair(); learn = _learner(student, opt_func=opt_func, path=tmp_path)
    _fit(learn, 1, 1e-2)
    learn.save('m')
    learn.load('m')                                        # optimizer state loaded: a plain dict without the regressors
    cb = RegressorMSECB(teacher, ['block2'], ['block2'])
    _fit(learn, 2, 1e-2, method='fit_one_cycle', cbs=[cb])
    r0 = copy.deepcopy(cb.state_dict())
    _fit(learn, 1, 1e-2, cbs=[cb])
    assert any(not torch.equal(v, r0[k]) for k,v in cb.state_dict().items())   # trained again
    _clean(learn, teacher)

# 2. GradientAccumulation: the gradient of one batch is exactly (CE + Σ weight·term) · bs/n_acc
class _Grab(Callback):
    order = 100
    def after_backward(self):
        if not hasattr(self, 'g'): self.g = [p.grad.detach().clone() for p in self.learn.model.parameters()]; self.xb0,self.yb0 = self.xb,self.yb

@pytest.mark.parametrize('name', STATELESS_TERM)
def test_gradient_accumulation_exact(name):
    teacher,student = _pair()
    s0 = copy.deepcopy(student)
    learn = _learner(student, opt_func=SGD, dls=synth_dls(bs=16))
    cb,grab = CALLBACKS[name](teacher),_Grab()
    _fit(learn, 1, 0., cbs=[cb, GradientAccumulation(64), grab])
    # the same batch by hand
    s0.train(); teacher.eval()
    xb,yb = grab.xb0[0],grab.yb0[0]
    feats = {}
    hs = [m.register_forward_hook(lambda m,i,o,n=n: feats.__setitem__(n, o)) for n,m in s0.named_modules() if n in cb.student_layers]
    pred = s0(xb)
    for h in hs: h.remove()
    tfeats = {}
    hs = [m.register_forward_hook(lambda m,i,o,n=n: tfeats.__setitem__(n, o)) for n,m in teacher.named_modules() if n in cb.teacher_layers]
    with torch.no_grad(): tpred = teacher(xb)
    for h in hs: h.remove()
    if cb.extras is not None: cb.extras.train()
    learn.yb,learn.epoch = grab.yb0,0   # what `self.target` and `self.epoch` read
    cb.learn = learn
    term = cb.loss_term(pred.float(), tpred.float(), [feats[n] for n in cb.student_layers], [tfeats[n] for n in cb.teacher_layers])
    loss = (F.cross_entropy(pred, yb) + cb.weight*term) * len(yb)/64
    g = torch.autograd.grad(loss, list(s0.parameters()))
    for a,b in zip(grab.g, g): torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    _clean(learn, teacher)

def test_gradient_accumulation_logged_loss():
    "the logged training loss is CE + weight·term, at the batch's own scale"
    teacher,student = _pair()
    learn = _learner(student, opt_func=SGD)
    cb = LogitDistillCB(teacher, weight=1.)
    class _Log(_Grab):
        def after_batch(self): self.l = float(self.learn.loss); self.lg = float(self.learn.loss_grad)
    log = _Log()
    _fit(learn, 1, 0., cbs=[cb, GradientAccumulation(64), log])
    assert abs(log.l - log.lg*64/16) < 1e-5 * max(1, abs(log.l)) or abs(log.l - log.lg) < 1e-5

# 3./4. attached for good: inert outside training fits
@pytest.mark.parametrize('name', list(CALLBACKS))
def test_attached_for_good_inference(name):
    teacher,student = _pair(); dls = synth_dls()
    cb = CALLBACKS[name](teacher)
    learn = _learner(student, cbs=[cb], dls=dls)
    c = count_forwards(teacher)
    r = _validate_quick(learn)
    assert len(r) == 2                                   # [loss, accuracy], no term column
    preds,targs = learn.get_preds()
    assert preds.shape == (len(dls.valid.dataset), 4)
    with learn.no_bar(): learn.summary()
    _validate_quick(learn)                               # the lock was released
    assert c[0] == 0                                     # no teacher forward outside training
    _fit(learn, 1, 1e-2)
    assert c[0] == len(dls.train)
    loss,acc = _validate_quick(learn)                    # after a fit: still [loss, accuracy]
    assert c[0] == len(dls.train); c[1].remove()
    _clean(learn, teacher)

def test_predict_costs_what_it_costs_without_fastkd(monkeypatch):
    import fastkd.probe as d
    teacher,student = _pair()
    learn = _learner(student, cbs=[RegressorMSECB(teacher, ['block2'], ['block2'])])
    calls = []
    monkeypatch.setattr(d, '_meta_copy', lambda m: calls.append(1) or m)
    x = synth_dls().valid_ds[0][0]
    learn.get_preds(dl=[(x[None], torch.tensor([0]))])
    _validate_quick(learn)
    assert calls == [] and n_hooks(teacher) == 0

# 6. feature-only callbacks accept a teacher with another head
@pytest.mark.parametrize('name', FEATURE_ONLY)
def test_feature_only_other_head(name):
    teacher,_ = tiny_pair(n_out=1000); _,student = tiny_pair()
    learn = _learner(student)
    cb = CALLBACKS[name](teacher)
    _fit(learn, 1, 1e-2, cbs=[cb])
    assert len(cb.history) == 1
    with pytest.raises(ValueError, match='same number of classes'): _fit(learn, 1, 1e-2, cbs=[LogitDistillCB(teacher)])
    _clean(learn, teacher)

# 7. several inputs: all go to both models
class _TwoInput(nn.Module):
    def __init__(self, n_tok=20, d=8, n_out=3):
        super().__init__(); self.emb = nn.Embedding(n_tok, d); self.body = nn.Sequential(nn.Linear(d, 16), nn.ReLU()); self.head = nn.Linear(16, n_out)
    def forward(self, ids, mask):
        e = (self.emb(ids)*mask[...,None]).sum(1)/mask.sum(1, keepdim=True).clamp_min(1)
        return self.head(self.body(e))

def _two_input_dls(n=64, bs=16):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 20, (2*n, 6), generator=g); mask = (torch.rand(2*n, 6, generator=g) > .2).float()
    y = ids[:,0] % 3
    ds = list(zip(ids, mask, y))
    return DataLoaders(DataLoader(ds[:n], bs=bs, shuffle=True, drop_last=True), DataLoader(ds[n:], bs=bs), device='cpu')

def test_two_inputs_logit_and_features():
    dls = _two_input_dls(); dls.n_inp = 2
    torch.manual_seed(0); teacher,student = _TwoInput(),_TwoInput()
    learn = Learner(dls, student, loss_func=CrossEntropyLossFlat())
    cbs = [LogitDistillCB(teacher), FeatureCosineCB(teacher, ['body'], ['body'])]
    _fit(learn, 2, 1e-2, cbs=cbs)
    assert all(len(cb.history) == 2 and cb.history[-1] == cb.history[-1] for cb in cbs)
    _clean(learn, teacher)

def test_tabular_learner_logit():
    import pandas as pd, numpy as np
    from fastai.tabular.all import TabularPandas, Categorify, Normalize, CategoryBlock, tabular_learner, RandomSplitter, range_of
    rng = np.random.default_rng(0)
    df = pd.DataFrame(dict(a=rng.choice(['x','y','z'], 200), b=rng.normal(size=200), c=rng.normal(size=200)))
    df['t'] = np.where(df.b + (df.a == 'x') > 0.5, 'hi', 'lo')
    to = TabularPandas(df, [Categorify, Normalize], cat_names=['a'], cont_names=['b','c'], y_names='t', y_block=CategoryBlock(),
                       splits=RandomSplitter(seed=0)(range_of(df)))
    dls = to.dataloaders(bs=32)
    teacher = tabular_learner(dls, layers=[32,16])
    _fit(teacher, 2, 1e-2)
    student = tabular_learner(dls, layers=[8])
    cb = LogitDistillCB(teacher, T=2.)
    _fit(student, 2, 1e-2, cbs=[cb, FeatureCosineCB(teacher, ['layers.0'], ['layers.0'])])
    assert len(cb.history) == 2 and cb.history[-1] == cb.history[-1]
    assert len(student.validate()) == 1 + len(student.metrics)
    _clean(student, teacher.model)

# 8. teachers returning dicts / objects with `.logits`, teachers in another dtype
class _DictTeacher(nn.Module):
    def __init__(self, m, kind): super().__init__(); self.m,self.kind = m,kind
    def forward(self, x):
        out = self.m(x)
        if self.kind == 'dict': return {'logits': out, 'hidden': x}
        return type('Out', (), {'logits': out})()

@pytest.mark.parametrize('kind', ['dict', 'object'])
def test_teacher_output_with_logits(kind):
    t,student = _pair(); teacher = _DictTeacher(t, kind)
    learn = _learner(student)
    cb = LogitDistillCB(teacher)
    _fit(learn, 1, 1e-2, cbs=[cb, FeatureCosineCB(teacher, ['block2'], ['m.block2'])])
    assert cb.history[0] == cb.history[0]

def test_teacher_output_without_logits():
    class _Bad(nn.Module):
        def __init__(self): super().__init__(); self.l = nn.Linear(1,1)
        def forward(self, x): return {'out': x}
    learn = _learner(_pair()[1])
    with pytest.raises(TypeError, match='expected logits'): _fit(learn, 1, cbs=[LogitDistillCB(_Bad())])

@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float64])
def test_teacher_in_another_dtype(dtype):
    teacher,student = _pair(); teacher.to(dtype)
    learn = _learner(student)
    cbs = [LogitDistillCB(teacher), FeatureCosineCB(teacher, ['block2'], ['block2'])]
    _fit(learn, 1, 1e-2, cbs=cbs)
    assert all(cb.history[0] == cb.history[0] for cb in cbs)
    assert next(teacher.parameters()).dtype == dtype

# 9. no validation set
@pytest.mark.parametrize('name', list(CALLBACKS))
def test_no_validation_set(name):
    teacher,student = _pair()
    dls = synth_dls(); dls = DataLoaders(dls.train, DataLoader([], bs=16), device='cpu')   # as `valid_pct=0` gives
    learn = Learner(dls, student, loss_func=CrossEntropyLossFlat())
    cb = CALLBACKS[name](teacher)
    _fit(learn, 1, 1e-2, cbs=[cb])
    assert len(cb.history) == 1
    _clean(learn, teacher)

# 10. the same callback object twice
def test_same_callback_twice():
    teacher,student = _pair(); learn = _learner(student)
    cb = LogitDistillCB(teacher)
    learn.add_cb(cb)
    with pytest.raises(ValueError, match='twice'): _fit(learn, 1, cbs=[cb])
    learn.remove_cb(cb); _clean(learn, teacher)

# fastai's other callbacks, with all four distillation callbacks at once
def _all(teacher): return [CALLBACKS[n](teacher) for n in ORIGINAL]

@pytest.mark.parametrize('extra', ['MixUp', 'CutMix', 'GradientClip', 'MixedPrecision', 'CPUMixedPrecision', 'SaveModelCallback',
                                   'EarlyStoppingCallback', 'ReduceLROnPlateau', 'CSVLogger'])
def test_with_fastai_callback(extra, tmp_path):
    teacher,student = _pair(); learn = _learner(student, path=tmp_path)
    make = dict(MixUp=MixUp, CutMix=CutMix, GradientClip=GradientClip, MixedPrecision=MixedPrecision,
                CPUMixedPrecision=CPUMixedPrecision, SaveModelCallback=SaveModelCallback,
                EarlyStoppingCallback=lambda: EarlyStoppingCallback(patience=5), ReduceLROnPlateau=ReduceLROnPlateau,
                CSVLogger=CSVLogger)[extra]
    cbs = _all(teacher)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # fastai's MixedPrecision warns that CUDA is missing
        _fit(learn, 2, 1e-2, method='fit_one_cycle', cbs=cbs + [make()])
    for cb in cbs: assert len(cb.history) == 2 and all(h == h for h in cb.history), (cb.term_name, cb.history)
    names = learn.recorder.metric_names
    for cb in cbs: assert cb.term_name in names
    assert len(learn.validate()) == 2
    _clean(learn, teacher)

def test_fine_tune_and_freeze():
    teacher,student = _pair(); learn = _learner(student, splitter=lambda m: [list(m.block1.parameters()), list(m.block2.parameters()) + list(m.head.parameters())])
    cbs = _all(teacher)
    learn.freeze()
    _fit(learn, 1, 1e-2, method='fine_tune', cbs=cbs, freeze_epochs=1)
    for cb in cbs: assert len(cb.history) == 1   # history of the last fit (fine_tune runs two)
    _clean(learn, teacher)

# exports hold the student alone: fastai's standard deployment path
def test_export_without_teacher(tmp_path):
    from fastai.learner import load_learner
    from fastai.vision.data import ImageDataLoaders
    from fastkd.data import make_fake_cifar
    fake = make_fake_cifar(tmp_path/'fake', n_train=4, n_test=1, n_classes=4, size=8)
    dls = ImageDataLoaders.from_folder(fake, train='train', valid='test', bs=4, device='cpu')
    teacher,student = _pair()
    cb = RegressorMSECB(teacher, ['block2'], ['block2'])
    learn = _learner(student, dls=dls, path=tmp_path, cbs=[cb, LogitDistillCB(teacher)])
    _fit(learn, 1, 1e-2)
    learn.export('student.pkl')
    assert cb in learn.cbs and cb.learn is learn          # still attached afterwards
    assert (tmp_path/'student.pkl').stat().st_size < 2*sum(p.numel()*4 for p in student.parameters()) + 200_000
    l2 = load_learner(tmp_path/'student.pkl')
    assert not any(isinstance(c, DistillCallback) for c in l2.cbs)
    assert sum(p.numel() for p in l2.model.parameters()) == sum(p.numel() for p in student.parameters())
    img = sorted((fake/'test').rglob('*.png'))[0]
    label,idx,probs = l2.predict(img)
    assert label in dls.vocab and probs.shape == (4,)
    _fit(learn, 1, 1e-2); assert len(cb.history) == 1   # the callback keeps working on the original

# hooks see exactly a module's output, also when an in-place ReLU follows
def test_hook_before_inplace_relu():
    class _Net(nn.Module):
        def __init__(self):
            super().__init__(); self.conv = nn.Conv2d(3, 8, 3, padding=1); self.bn = nn.BatchNorm2d(8); self.relu = nn.ReLU(inplace=True)
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
        def forward(self, x): return self.head(self.relu(self.bn(self.conv(x))))
    torch.manual_seed(0); teacher,student = _Net(),_Net()
    class _Look(DistillCallback):
        term_name = 'look'
        def loss_term(self, s_pred, t_pred, s_feats, t_feats):
            self.mins = (float(s_feats[0].min()), float(t_feats[0].min()))
            return (s_feats[0] - t_feats[0]).pow(2).mean()
    cb = _Look(teacher, ['bn'], ['bn'])
    _fit(_learner(student), 1, 1e-2, cbs=[cb])
    assert cb.mins[0] < 0 and cb.mins[1] < 0               # BN outputs, not the ReLU's

# every method at once: one teacher forward per batch, every column, every term finite
def test_every_method_in_one_fit():
    teacher,student = _pair(); dls = synth_dls()
    learn = _learner(student, dls=dls)
    cbs = [f(teacher) for f in CALLBACKS.values()]
    c = count_forwards(teacher)
    _fit(learn, 2, 1e-3, method='fit_one_cycle', cbs=cbs)
    assert c[0] == 2*len(dls.train); c[1].remove()
    for cb in cbs: assert len(cb.history) == 2 and all(h == h and abs(h) < float('inf') for h in cb.history), (cb.term_name, cb.history)
    assert len(set(cb.term_name for cb in cbs)) >= len(cbs) - 1   # own columns (LogitDistillCB appears twice)
    assert len(learn.validate()) == 2
    _clean(learn, teacher)
