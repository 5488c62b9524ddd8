#!/usr/bin/env python3
"""Seeded fits of every experiment of the suite on a small synthetic CIFAR folder: the per-batch losses and a hash of the
student's final weights, as hex floats. Run before and after a refactor, then `diff` the two files: the classification
path is bit-identical when they are equal.

    python tools/fingerprint.py OUT.txt [--experiments logit dkd ...]"""
import sys, argparse, hashlib, tempfile, warnings
from pathlib import Path
import torch
warnings.simplefilter('ignore')

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('out'); p.add_argument('--experiments', nargs='*', default=None); p.add_argument('--batches', type=int, default=3)
    a = p.parse_args(argv)
    from fastkd.core import set_seed
    from fastkd.data import make_fake_cifar, cifar10_dls
    from fastkd.models import get_model
    from fastkd.learner import student_learner
    try: from fastkd.suite.registry import EXPERIMENTS, experiment_hparams
    except ImportError: from fastkd.experiments import EXPERIMENTS, experiment_hparams
    torch.set_num_threads(1)
    lines = []
    with tempfile.TemporaryDirectory() as d:
        path = make_fake_cifar(Path(d)/'cifar', n_train=8*a.batches, n_test=2)
        for exp in a.experiments or list(EXPERIMENTS):
            set_seed(0)
            teacher = get_model('resnet14')
            dls = cifar10_dls(path, bs=64, seed=0, device='cpu', cache=False)
            learn = student_learner(dls, arch='resnet8', lr=0.1)
            cbs = EXPERIMENTS[exp](teacher, learn.model, **experiment_hparams(exp, 'cpu'))
            losses = []
            from fastai.callback.core import Callback
            class Rec(Callback):
                order = 100
                def after_batch(self):
                    if self.training: losses.append(float(self.learn.loss))
            with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 0.1, cbs=cbs + [Rec()])
            h = hashlib.sha1(b''.join(v.detach().cpu().contiguous().numpy().tobytes() for v in learn.model.state_dict().values())).hexdigest()[:16]
            lines.append(f"{exp} {h} " + ' '.join(float(l).hex() for l in losses))
            print(lines[-1][:120], flush=True)
    Path(a.out).write_text('\n'.join(lines) + '\n')

if __name__ == '__main__': main()
