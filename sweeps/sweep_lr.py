"""Peak learning-rate sweep for the student recipe, on the validation split (never the test set).

    FASTKD_DATA=../shared/data/cifar10 .venv/bin/python sweeps/sweep_lr.py lr0.2 lr0.2-fp32 lr0.1 lr0.4 lr0.2-constmom lr0.8 lr0.4-wd1e-4 lr1.6 > sweeps/sweep_lr.txt

resnet8 student (`student_learner`, bf16 autocast + channels-last on the CPU unless `-fp32`), batch 256, `fit_one_cycle(3)`,
seed 0; prints the validation accuracy after each epoch and the time. Every configuration names its peak learning rate,
so the sweep does not depend on `student_learner`'s default.
"""
import sys, time
from fastkd.all import *
from fastkd.core import set_seed   # not in fastkd.all: fastai has its own

CONFIGS = {
    'lr0.1': dict(lr=0.1), 'lr0.2': dict(lr=0.2), 'lr0.4': dict(lr=0.4), 'lr0.8': dict(lr=0.8), 'lr1.6': dict(lr=1.6),
    'lr0.2-fp32': dict(lr=0.2, amp=False),                 # without bf16 autocast
    'lr0.2-constmom': dict(lr=0.2, moms=(0.9,0.9,0.9)),    # constant momentum instead of one-cycle's 0.95-0.85-0.95
    'lr0.4-wd1e-4': dict(lr=0.4, wd=1e-4),                 # weight decay 1e-4 instead of 5e-4
}

if __name__ == '__main__':
    bad = [n for n in sys.argv[1:] if n not in CONFIGS]
    if bad or len(sys.argv) < 2: sys.exit(f"usage: sweep_lr.py CONFIG...; unknown {bad}; expected some of {list(CONFIGS)}")
    for name in sys.argv[1:]:
        c = dict(CONFIGS[name]); moms = c.pop('moms', None)
        set_seed(0); dls = cifar10_dls(bs=256, seed=0)
        learn = student_learner(dls, 'resnet8', **c)
        t = time.time()
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(3, **({'moms':moms} if moms else {}))
        print(name, [round(float(v[2]),4) for v in learn.recorder.values], f'{time.time()-t:.0f}s', flush=True)
