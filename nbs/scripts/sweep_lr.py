"""Peak learning-rate sweep for the student recipe (validation split). See nbs/scripts/sweep_lr.txt for the command and output."""
import sys, time, torch
from functools import partial
from fastkd.all import *
from fastai.optimizer import Adam
cfgs = {
 'cur':   dict(lr=0.2),
 'fp32':  dict(amp=False),
 'lr0.1': dict(lr=0.1),
 'lr0.4': dict(lr=0.4),
 'nomomcyc': dict(moms=(0.9,0.9,0.9)),
 'lr0.8': dict(lr=0.8),
 'lr1.6': dict(lr=1.6),
 'lr0.4wd1e-4': dict(lr=0.4, wd=1e-4),
}
for name in sys.argv[1:]:
    c = dict(cfgs[name]); moms = c.pop('moms', None)
    set_seed(0); dls = cifar10_dls(bs=256, seed=0)
    learn = student_learner(dls, 'resnet8', **c)
    t = time.time()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(3, **({'moms':moms} if moms else {}))
    print(name, [round(float(v[2]),4) for v in learn.recorder.values], f'{time.time()-t:.0f}s', flush=True)
