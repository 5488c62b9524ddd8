"""The `gpu` preset's recipes leave the `cpu` preset alone: the committed reference (results/cpu) still counts as done, run for run,
so `make experiments` and `fastkd run --preset cpu --out results` retrain nothing that they did not retrain before."""
import json
import pytest
from conftest import ROOT
from fastkd import experiments as E

REF = ROOT/'results'/'cpu'

def test_committed_cpu_runs_still_count_as_done():
    runs = E.load_runs(REF)
    if not runs: pytest.skip('no committed results/cpu/runs')
    for r in runs:
        if r['experiment'] not in E.EXPERIMENTS: continue
        hp = E.experiment_hparams(r['experiment'], 'cpu')
        assert hp == E.EXPERIMENTS[r['experiment']].hparams and 'ce_weight' not in hp
        assert E._is_done(r, E.PRESETS['cpu'], hp), f"{r['experiment']}-seed{r['seed']} would be retrained"

def test_committed_cpu_teacher_is_reused():
    rec = REF/'teacher.json'
    if not rec.exists(): pytest.skip('no committed results/cpu/teacher.json')
    assert E._teacher_settings(E.PRESETS['cpu'], 0) == json.loads(rec.read_text())['settings']

def test_cpu_and_smoke_have_no_recipe_nor_schedule():
    for p in ('smoke', 'cpu'):
        assert p not in E.RECIPES and 'schedule' not in E.PRESETS[p]
        assert E._learner_kwargs(E.PRESETS[p]) == dict(lr=E.PRESETS[p]['lr'])

def test_gpu_learners_use_the_references_optimizer():
    "RepDistiller/mdistiller: torch SGD, momentum 0.9, weight decay 5e-4, no Nesterov, lr 0.05, batch 64"
    from fastkd.learner import student_learner
    from fastkd.test_utils import synth_dls
    cfg = E.PRESETS['gpu']
    assert (cfg['bs'], cfg['lr'], cfg['epochs'], cfg['teacher_epochs'], cfg['lr_steps'], cfg['lr_decay']) == (64, 0.05, 240, 240, [150, 180, 210], 0.1)
    learn = student_learner(synth_dls(), arch='resnet8', amp=False, **E._learner_kwargs(cfg))
    learn.create_opt()
    pg = learn.opt.opt.param_groups[0]
    assert (pg['lr'], pg['momentum'], pg['nesterov'], pg['weight_decay']) == (0.05, 0.9, False, 5e-4)
