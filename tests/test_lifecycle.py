"Callbacks that live across fits, and fastai's other callbacks: clipping, schedules, trackers, `add_cb`/`remove_cb` during a fit"
import copy, warnings
import numpy as np, pytest, torch, torch.nn as nn
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.callback.core import Callback
from fastai.callback.training import GradientClip
from fastai.callback.tracker import EarlyStoppingCallback
from fastai.callback.schedule import ParamScheduler, SchedLin
import fastai.callback.progress
from fastkd.all import *
from fastkd.test_utils import tiny_pair, synth_dls, count_forwards, n_hooks

def _learner(student, cbs=()): return Learner(synth_dls(), student, loss_func=CrossEntropyLossFlat(), cbs=list(cbs))
def _fit(learn, n, lr=1e-2, **kw):
    with learn.no_bar(), learn.no_logging(): learn.fit(n, lr, **kw)

class _Norms(Callback):
    "Records the gradient norm of every parameter the optimizer steps, after GradientClip (order 11)"
    order = 12
    def before_step(self):
        ps = [p for pl in self.learn.opt.param_lists for p in pl if p.grad is not None]
        self.learn.norms = getattr(self.learn, 'norms', []) + [float(torch.norm(torch.stack([p.grad.norm() for p in ps])))]

def test_gradient_clip_includes_the_extras():
    teacher,student = tiny_pair()
    cb = RegressorMSECB(teacher, ['block2'], ['block2'], weight=100.)
    learn = _learner(student, [GradientClip(0.1), _Norms()])
    _fit(learn, 1, cbs=[cb])
    assert max(learn.norms) <= 0.1 + 1e-5, max(learn.norms)   # the regressor's gradients are in the clipped norm

def test_reused_callback_starts_afresh_for_another_student():
    teacher,s1 = tiny_pair(); _,s2 = tiny_pair(seed=1)
    cb = DecoupledKDCB(teacher, warmup=4)
    fit = RegressorMSECB(teacher, ['block2'], ['block2'])
    l1 = _learner(s1); _fit(l1, 2, cbs=[cb, fit])
    reg1 = fit.extras
    _fit(l1, 1, cbs=[cb, fit])                            # the same student again (fine_tune's second fit): continues
    assert cb.epochs_before == 3 and fit.extras is reg1
    l2 = _learner(s2); _fit(l2, 2, cbs=[cb, fit])          # another student: a fresh warm-up and a fresh regressor
    assert cb.epochs_before == 2 and fit.extras is not reg1
    sd = fit.state_dict(); fit.load_state_dict(sd)        # a state loaded on purpose is kept for the next student
    _,s3 = tiny_pair(seed=2); _fit(_learner(s3), 1, lr=0., cbs=[fit])
    for k,v in fit.extras.named_parameters(): torch.testing.assert_close(v.detach(), sd[k])   # (lr 0: the weights as loaded)

def test_add_cb_during_a_fit_distils_from_then_on():
    teacher,student = tiny_pair()
    kd = LogitDistillCB(teacher)
    class _AddAt1(Callback):
        def after_epoch(self):
            if self.epoch == 0: self.learn.add_cb(kd)
    learn = _learner(student)
    c = count_forwards(teacher)
    with pytest.warns(UserWarning, match='added during a fit'): _fit(learn, 3, cbs=[_AddAt1()])
    assert c[0] == 2*len(learn.dls.train), c[0]            # the teacher ran in epochs 1 and 2
    assert len(kd.history) == 2 and all(np.isfinite(kd.history))
    assert len({len(v) for v in learn.recorder.values}) == 1   # the table kept its columns
    c[1].remove(); learn.remove_cb(kd)
    assert n_hooks(teacher) == 0 and learn.metrics == []

def test_remove_cb_during_a_fit_keeps_the_table_and_trackers():
    teacher,student = tiny_pair()
    kd = LogitDistillCB(teacher)
    class _RemoveAt0(Callback):
        def after_epoch(self):
            if self.epoch == 0: self.learn.remove_cb(kd)   # "distil the first epoch only"
    learn = _learner(student)
    _fit(learn, 3, cbs=[kd, _RemoveAt0(), EarlyStoppingCallback(monitor='valid_loss', patience=5)])
    names = list(learn.recorder.metric_names[1:-1])
    assert len({len(v) for v in learn.recorder.values}) == 1 and len(learn.recorder.values[0]) == len(names), (names, learn.recorder.values)
    i = names.index('kd')
    assert np.isfinite(learn.recorder.values[0][i]) and all(np.isnan(v[i]) for v in learn.recorder.values[1:])
    assert learn.metrics == [] and not any(type(c).__name__ == '_DropColumn' for c in learn.cbs)   # gone once the fit ended
    assert n_hooks(teacher) == 0 and n_hooks(student) == 0

def test_weight_schedule_and_param_scheduler():
    "`weight` may be a fastai schedule of the training progress: the loss is CE + sched(pct_train)·term; ParamScheduler on it is refused"
    teacher,student = tiny_pair()
    cb = LogitDistillCB(teacher, weight=SchedLin(0., 1.))
    class _Loss(Callback):
        order = 6   # after the term joined the loss
        def after_loss(self):
            if not self.training: return
            ce = float(self.learn.loss_func(self.pred, *self.yb))
            term = float(kd_loss(self.pred.float(), cb.t_pred.float(), 4.))
            self.learn.seen = getattr(self.learn, 'seen', []) + [(float(self.loss_grad) - ce, self.pct_train*term)]
    learn = _learner(student)
    _fit(learn, 2, cbs=[cb, _Loss()])
    got,want = map(np.array, zip(*learn.seen))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert want[0] == 0 and want[-1] > 0
    with pytest.raises(ValueError, match='ParamScheduler schedules the optimizer'):
        _fit(_learner(tiny_pair()[1]), 1, cbs=[LogitDistillCB(teacher), ParamScheduler({'weight': SchedLin(0., 1.)})])
    with pytest.raises(ValueError, match='weight='): LogitDistillCB(teacher, weight='high')

def test_tracker_on_a_term_column_minimises_it():
    teacher,student = tiny_pair()
    es = EarlyStoppingCallback(monitor='kd', patience=1)
    assert es.comp is np.greater   # fastai's guess for a column without 'loss' in its name
    _fit(_learner(student), 2, cbs=[LogitDistillCB(teacher), es])
    assert es.comp is np.less

def test_teacher_outputs_not_held_after_the_fit():
    teacher,student = tiny_pair()
    cb = RegressorMSECB(teacher, ['block2'], ['block2'])
    _fit(_learner(student), 1, cbs=[cb])
    assert getattr(cb, 't_pred', None) is None and getattr(cb, 't_feats', None) is None

@pytest.mark.parametrize('make', [lambda t: RegressorMSECB(t, ['block2'], ['block2']), lambda t: ABCB(t, ['block2'], ['block2']),
                                  lambda t: ReviewKDCB(t, ['block1', 'block2'], ['block1', 'block2'])])
def test_progressive_resizing_keeps_the_trained_extras(make):
    "The same Learner on larger images (progressive resizing): the extras' layers do not depend on the size, their trained weights carry over"
    teacher,student = tiny_pair()
    cb = make(teacher)
    learn = Learner(synth_dls(size=8), student, loss_func=CrossEntropyLossFlat())
    _fit(learn, 1, cbs=[cb])
    w = {k:v.detach().clone() for k,v in cb.extras.named_parameters()}
    learn.dls = synth_dls(size=16)
    _fit(learn, 1, lr=0., cbs=[cb])   # lr 0: the weights are what the second fit started from
    for k,v in cb.extras.named_parameters(): torch.testing.assert_close(v.detach(), w[k])

def test_attention_transfer_warns_like_every_callback():
    "AttentionTransferCB kept a flag of its own in the base class's set of warnings given: its first base-class warning raised TypeError"
    teacher,student = tiny_pair()
    cb = AttentionTransferCB(teacher, ['block2'], ['block2'])
    cb.min_batch = 10**6   # every batch too small: the base class's once-only warning
    with pytest.warns(UserWarning, match='has no relation between samples'): _fit(_learner(student), 1, cbs=[cb])
    assert cb.n_skipped == len(synth_dls().train)

def test_term_columns_reconcile_with_the_loss():
    "Each term column is the epoch mean of weight × term: the mean training loss = the mean task loss + the sum of the columns"
    teacher,student = tiny_pair()
    cbs = [LogitDistillCB(teacher, weight=3.), AttentionTransferCB(teacher, ['block2'], ['block2'], weight=50.)]
    class _Per(Callback):
        order = 6   # after the terms joined the loss
        def after_loss(self):
            if self.training: self.learn.per = getattr(self.learn, 'per', []) + [(self.epoch, float(self.loss_grad), float(self.learn.loss_func(self.pred, *self.yb)))]
    learn = _learner(student)
    _fit(learn, 2, cbs=cbs + [_Per()])
    names = list(learn.recorder.metric_names[1:-1])
    cols = {cb.column:[v[names.index(cb.column)] for v in learn.recorder.values] for cb in cbs}
    for cb in cbs: np.testing.assert_allclose(cols[cb.column], [cb.weight*h for h in cb.history], rtol=1e-5)   # history: the term itself
    for ep in range(2):
        per = [(l, ce) for e,l,ce in learn.per if e == ep]
        total,task = np.mean([l for l,_ in per]),np.mean([ce for _,ce in per])
        np.testing.assert_allclose(total - task, sum(c[ep] for c in cols.values()), rtol=1e-4)
