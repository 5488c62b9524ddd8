"Leave the models as found: after many fits (normal, cancelled, broken) no hooks remain, the teacher is as it was, memory does not grow."
import gc, resource
import torch
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.callback.core import Callback, CancelFitException
import fastai.callback.progress
from fastkd.all import *
from fastkd.test_utils import *

class _Stop(Callback):
    def __init__(self, exc): self.exc = exc
    def after_batch(self):
        if self.iter == 1: raise self.exc

def _rss_mb():
    with open('/proc/self/status') as f:
        for l in f:
            if l.startswith('VmRSS'): return int(l.split()[1])/1024

def test_fifty_fits_leave_no_trace():
    teacher,student = tiny_pair()
    teacher.train(); teacher.block1.requires_grad_(False)    # the user's own settings
    rg = [p.requires_grad for p in teacher.parameters()]
    learn = Learner(synth_dls(n=32, bs=16), student, loss_func=CrossEntropyLossFlat())
    stops = [None, CancelFitException(), RuntimeError('boom'), KeyboardInterrupt()]
    rss = []
    for i in range(50):
        cbs = [LogitDistillCB(teacher), FeatureCosineCB(teacher, ['block1'], ['block1']),
               RegressorMSECB(teacher, ['block2'], ['block2']), AttentionTransferCB(teacher, ['block2'], ['block2'])]
        stop = stops[i % 4]
        try:
            with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2, cbs=cbs + ([_Stop(stop)] if stop else []))
        except (RuntimeError, KeyboardInterrupt): pass
        assert n_hooks(teacher) == 0 and n_hooks(student) == 0, i
        assert teacher.training and [p.requires_grad for p in teacher.parameters()] == rg, i
        assert not learn.__dict__.get('_fastkd_runners') and '_fastkd_student' not in learn.__dict__ and len(learn.metrics) == 0, i
        assert len(list(learn.opt.all_params())) == len(list(student.parameters())), i
        gc.collect(); rss.append(_rss_mb())
    # memory settles: the last 20 fits grow the process by less than 20 MB
    assert rss[-1] - rss[29] < 20, rss
