"""Choose the feature-loss weights of the `cpu` preset on the validation split (never the test set).

A short proxy: 3 epochs on 1,000 train images per class (its validation split is a subset of the
full one, which the teacher never saw), seed 0, the trained `cpu` teacher. For each experiment the
weight with the best last-epoch validation accuracy wins. Run from the repo root:

    FASTKD_DATA=../shared/data/cifar10 .venv/bin/python sweeps/sweep_weights.py results/cpu > results/cpu/sweep.txt

The committed `results/cpu/sweep.txt` was produced when the preset's peak learning rate was 0.2 (teacher and proxy);
with today's 0.8 the script reuses the committed teacher and gives other numbers. Its runs go to `results/cpu/sweep/`
(ignored by git).
"""
import sys, json
from pathlib import Path
from fastkd.suite.registry import PRESETS
from fastkd.suite.run import get_teacher, run_student
from fastkd.data import cifar10_path

out = Path(sys.argv[1]); path = cifar10_path()
cfg = dict(PRESETS['cpu'])
teacher,_ = get_teacher(path, cfg, out, verbose=False)          # the full-data teacher, reused
proxy = dict(cfg, epochs=3, n_per_class=1000, n_test_per_class=100)
grid = {'cosine': ('cos_weight', [1., 5., 20.]), 'fitnet': ('fitnet_weight', [1., 10., 100.]),
        'attention': ('at_weight', [100., 1000.])}
res = {}
for exp,(k,ws) in grid.items():
    for w in ws:
        r = run_student(exp, 0, teacher, path, proxy, out/'sweep', hparams={k: w}, verbose=False)
        res[(exp,w)] = r.get('valid_acc_last', float('nan'))
        print(f'{exp:10s} {k}={w:<7g} valid acc {res[(exp,w)]:.4f}', flush=True)
best = {k: max(ws, key=lambda w: res[(exp,w)]) for exp,(k,ws) in grid.items()}
print('chosen:', json.dumps(best))
