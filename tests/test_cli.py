"""The `fastkd` command speaks plainly: errors a user can fix are one line on stderr, a non-zero exit and nothing written;
`--debug` (or FASTKD_DEBUG=1) shows the traceback; `--help` lists the choices and defaults. Most tests call the command's
function in this process (fast); two run it as a new process, as a user does."""
import ast, io, os, subprocess, sys, contextlib
from pathlib import Path
import pytest
from conftest import ROOT
from fastkd import cli as C                        # the command
from fastkd.suite import registry as R, tune as T  # the experiments; the tuning

def cli(*args):
    "Run `fastkd args` in this process; return (exit status, stdout, stderr)"
    o,e = io.StringIO(),io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        try: C.fastkd_cli(list(args)); code = 0
        except SystemExit as x: code = x.code
    return code,o.getvalue(),e.getvalue()

def one_line_error(code, err, starts):
    assert code == 1, (code, err)
    assert err.count('\n') == 1 and 'Traceback' not in err, err
    assert err.startswith('fastkd: error: ' + starts), err

@pytest.fixture(autouse=True)
def _no_debug(monkeypatch): monkeypatch.delenv('FASTKD_DEBUG', raising=False)

def test_missing_data_folder(tmp_path):
    code,out,err = cli('run', '--data', str(tmp_path/'nowhere'), '--out', str(tmp_path/'out'))
    one_line_error(code, err, f'CIFAR-10 folder {tmp_path/"nowhere"} does not exist; expected train/<class>/')
    assert not (tmp_path/'out').exists()

def test_bad_layout(tmp_path):
    (tmp_path/'data'/'train').mkdir(parents=True)
    code,_,err = cli('run', '--data', str(tmp_path/'data'), '--out', str(tmp_path/'out'))
    one_line_error(code, err, f'{tmp_path/"data"} has no class folders under train/')
    assert not (tmp_path/'out').exists()

def test_unreadable_image(tmp_path):
    from fastkd.data import make_fake_cifar
    data = make_fake_cifar(tmp_path/'data', n_train=2, n_test=1)
    bad = sorted((data/'train').rglob('*.png'))[3]; bad.write_bytes(b'not a png')
    code,_,err = cli('run', '--preset', 'smoke', '--data', str(data), '--out', str(tmp_path/'out'))
    one_line_error(code, err, f'cannot read image {bad}')
    assert not (tmp_path/'out').exists()

def test_no_network(tmp_path, monkeypatch):
    "No data given and no network: one line naming the download, where from, and how to use a local copy"
    import fastai.data.external as fe
    monkeypatch.delenv('FASTKD_DATA', raising=False)
    monkeypatch.setenv('FASTAI_HOME', str(tmp_path/'fastai'))     # no CIFAR-10 downloaded earlier
    for v in ('https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY'): monkeypatch.setenv(v, 'http://127.0.0.1:9')   # nothing listens there
    for v in ('no_proxy', 'NO_PROXY'): monkeypatch.delenv(v, raising=False)
    fe.fastai_cfg.cache_clear()
    try: code,_,err = cli('run', '--out', str(tmp_path/'out'))
    finally: fe.fastai_cfg.cache_clear()
    one_line_error(code, err, f'downloading CIFAR-10 from {fe.URLs.CIFAR} failed (')
    assert '--data' in err and 'FASTKD_DATA' in err
    assert not (tmp_path/'out').exists()

@pytest.mark.parametrize('error', ['layer', 'weight'])
def test_library_errors_are_one_line(error, monkeypatch, tmp_path):
    "A bad layer name or weight (raised by the library while the suite runs) is one line too"
    from fastkd.models import resnet8
    from fastkd.hooks import find_module
    from fastkd.methods.logit import LogitDistillCB
    fail = {'layer': lambda *a, **k: find_module(resnet8(), 'layer9'), 'weight': lambda *a, **k: LogitDistillCB(resnet8(), weight=-1.)}[error]
    monkeypatch.setattr(C, 'run_suite', fail)
    code,_,err = cli('run', '--out', str(tmp_path/'out'))
    one_line_error(code, err, {'layer': "model has no layer 'layer9'", 'weight': 'weight=-1.0; expected'}[error])

def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError): cli('run', '--data', str(tmp_path/'nowhere'), '--debug')
    monkeypatch.setenv('FASTKD_DEBUG', '1')
    with pytest.raises(FileNotFoundError): cli('run', '--data', str(tmp_path/'nowhere'))

def test_usage_errors(tmp_path):
    for args in (['run', '--preset', 'huge'], ['run', '--only', 'distill'], ['run', '--seeds', 'x'], ['fly'], []):
        code,_,err = cli(*args)
        assert code == 2 and 'usage: fastkd' in err, (args, err)
    code,_,err = cli('run', '--only', 'logit', '--skip', 'logit', '--out', str(tmp_path/'out'))
    one_line_error(code, err, '--only logit --skip logit leaves no experiment to run')
    code,_,err = cli('run', '--seeds', '-1', '--data', str(tmp_path), '--out', str(tmp_path/'out'))
    one_line_error(code, err, 'seeds=[-1]; expected integers >= 0')
    assert not (tmp_path/'out').exists()

def test_help_lists_choices_and_defaults():
    code,out,_ = cli('run', '--help')
    assert code == 0
    flat = ' '.join(out.split())
    for s in ('{smoke,cpu,gpu}', 'default: gpu on CUDA, else cpu', 'default: runs', 'default: results', 'default: 0', '--debug', 'classic', *R.EXPERIMENTS,
              '--settings {reference,tuned}', 'default: reference', 'tuning.csv'):
        assert s in flat, s

def test_list_prints_the_registry():
    code,out,_ = cli('list')
    assert code == 0
    for e in R.EXPERIMENTS.values(): assert f'| {e.name} |' in out and e.description in out

def test_default_output_is_uncommitted():
    "A default run writes into runs/<preset>, which git ignores; the committed reference is only read"
    a = C._parser().parse_args(['run'])
    assert (a.out, a.reference, a.figures) == ('runs', 'results', None)
    if not (ROOT/'.git').exists(): pytest.skip('not a git checkout')
    def ignored(f): return subprocess.run(['git', 'check-ignore', '-q', f], cwd=ROOT).returncode == 0
    assert ignored('runs/cpu/runs/logit-seed0.json') and ignored('runs/cpu/figures/test_accuracy.png')
    assert not ignored('results/cpu/runs/logit-seed0.json')

def _name(path:Path) -> str:
    "The module name of `path` below fastkd: 'core', 'suite.run', 'suite' for fastkd/suite/__init__.py"
    parts = path.relative_to(ROOT/'fastkd').with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)

def _imports(path:Path, pkg='fastkd') -> set:
    "The fastkd modules that `path` imports (names as `_name` gives them), at top level or inside functions"
    here = tuple(_name(path).split('.')) if path.stem == '__init__' else tuple(_name(path).split('.')[:-1])   # its package, below fastkd
    found = set()
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom) and n.level:
            base = here[:len(here)-(n.level-1)]
            found |= {'.'.join(base + tuple(n.module.split('.')))} if n.module else {'.'.join(base + (a.name,)) for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module and n.module.startswith(pkg + '.'): found.add(n.module[len(pkg)+1:])
        elif isinstance(n, ast.Import): found |= {a.name[len(pkg)+1:] for a in n.names if a.name.startswith(pkg + '.')}
    return found

def test_no_import_cycle():
    "No import cycle among fastkd's modules (subpackages included); the library never imports the suite or the command line"
    mods = {_name(p): _imports(p) for p in (ROOT/'fastkd').rglob('*.py') if p.name != '_modidx.py' and p != ROOT/'fastkd'/'__init__.py'}
    assert not [m for m in mods['suite.report'] if m.startswith('suite')]   # the report reads files: it imports nothing of the suite
    for m,deps in mods.items():
        if m.split('.')[0] not in ('suite', 'cli'):
            assert not [d for d in deps if d.split('.')[0] in ('suite', 'cli')], f'the library module {m} imports the suite: {deps}'
    def visit(m, stack):
        assert m not in stack, f"import cycle: {' -> '.join(stack + [m])}"
        for d in mods.get(m, ()): visit(d, stack + [m])
    for m in mods: visit(m, [])

def test_console_script_in_a_new_process(tmp_path):
    "As a user runs it: exactly one line on stderr and status 1; fastai's DDP support (it needs `accelerate`) is not imported"
    env = dict(os.environ, FASTKD_CACHE=str(tmp_path/'cache')); env.pop('FASTKD_DEBUG', None)
    code = ("import sys, fastkd.cli as C; bad = [m for m in ('fastai.distributed', 'fastkd.distributed') if m in sys.modules]; "
            "assert not bad, bad; C.fastkd_cli()")
    r = subprocess.run([sys.executable, '-c', code, 'run', '--data', str(tmp_path/'nowhere'), '--out', str(tmp_path/'out')],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith('fastkd: error: CIFAR-10 folder') and r.stderr.count('\n') == 1, r.stderr[-2000:]
    assert not (tmp_path/'out').exists()

def test_cli_works_with_fastcore_2():
    "fastcore 2 has no `fastcore.script.Param`: the command line is plain argparse"
    src = Path(C.__file__).read_text()
    assert 'fastcore.script' not in src and 'call_parse' not in src

def test_python_m_runs_the_command(tmp_path):
    "`python -m fastkd.cli` (what torchrun launches) is the same command"
    r = subprocess.run([sys.executable, '-m', 'fastkd.cli', 'list'], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and '| logit |' in r.stdout, r.stderr[-2000:]

# --- fastkd tune: one tuning protocol for every experiment -------------------------------------------------------------

def test_every_distillation_experiment_has_three_candidates_or_more():
    "The preset's value first, then each tuned knob × 1/3 and × 3, the others unchanged; DKD also varies β, NKD γ"
    for e in R.EXPERIMENTS:
        if e == 'baseline': assert T.tuning_knobs(e) == (); continue
        cands = T.tuning_candidates(e, 'cpu'); ref = R.experiment_hparams(e, 'cpu')
        assert len(cands) >= 3 and cands[0][0] == 'reference' and cands[0][1] == ref, e
        for label,hp,stem in cands[1:]:
            diff = [k for k in hp if hp[k] != ref[k]]
            assert len(diff) == 1 and diff[0] in T.tuning_knobs(e), (e, hp)
            assert abs(hp[diff[0]]/ref[diff[0]] - (3 if label.endswith('×3') else 1/3)) < 1e-3, (e, label, hp)
        assert len({s for *_,s in cands}) == len(cands)   # one file name per candidate
    assert {k for l,hp,s in T.tuning_candidates('dkd', 'cpu') for k in hp if hp[k] != R.experiment_hparams('dkd', 'cpu')[k]} == {'alpha', 'beta'}
    assert {'nkd', 'ofd', 'ab', 'fsp'} <= set(R.select_experiments(['zoo']))

def test_tune_plan_reads_no_data_and_writes_nothing(tmp_path):
    code,out,err = cli('tune', '--preset', 'cpu', '--only', 'logit', 'dkd', '--out', str(tmp_path/'out'), '--plan')
    assert code == 0, err
    assert out.count(' logit ') == 3 and out.count(' dkd ') == 5 and out.count('to run') == 3 + 5 and 'pending' in out, out
    assert not (tmp_path/'out').exists()

def _fake_run_student(calls, valid, test_acc=lambda hp: 0.5, fail=lambda hp: False):
    "A stand-in for `run_student` that writes a record and a real (untrained) checkpoint in no time; `valid(hp)`, `test_acc(hp)`: its accuracies"
    import json
    from fastkd.core import atomic_write_json, save_state
    from fastkd.models import get_model
    def run(exp, seed, teacher, path, cfg, out, hparams=None, device=None, verbose=True, preset=None, name=None, test=True):
        hp = {**R.experiment_hparams(exp, preset), **(hparams or {})}
        name = name or f'{exp}-seed{seed}'; out = Path(out); calls.append((exp, seed, str(out), name, dict(hp), test))
        r = dict(experiment=exp, description=R.EXPERIMENTS[exp].description, seed=seed, preset=cfg, hparams=hp, terms={})
        if fail(hp): atomic_write_json(dict(r, status='failed', error='non-finite training loss', epoch=0), out/'failed'/f'{name}.json'); return r
        h = dict(accuracy=[valid(hp)], train_loss=[1.], valid_loss=[1.], train_ce=[1.], train_loss_iter=[1.])
        r = dict(r, status='ok', valid_acc_last=valid(hp), valid_acc_best=valid(hp), test_acc=test_acc(hp) if test else None,
                 train_time=1., time_per_epoch=1., params=1, history=h)
        import torch; torch.manual_seed(seed)
        save_state(get_model(cfg['student'], n_out=10), out/'checkpoints'/f'{name}.pth', experiment=exp, seed=seed, arch=cfg['student'])
        atomic_write_json(r, out/'runs'/f'{name}.json'); return r
    return run

def test_tune_chooses_on_validation_reuses_the_reference_and_resumes(tmp_path, monkeypatch):
    """Tuning `logit` on tiny synthetic data: the reference candidate is the suite's finished run (not retrained), the other two
    are trained without a test evaluation, the best *validation* accuracy wins (not the best test accuracy), its seed-0 run is
    promoted (test evaluated once, from its checkpoint) and seed 1 trained into tuned/; a rerun trains nothing"""
    import json
    from fastkd.data import make_fake_cifar
    monkeypatch.setenv('FASTKD_CACHE', str(tmp_path/'cache'))
    data = make_fake_cifar(tmp_path/'data', n_train=3, n_test=2)
    monkeypatch.setattr(T, 'get_teacher', lambda *a, **k: (None, {}))
    calls = []
    valid = lambda hp: {0.9: 0.50, 0.3: 0.40, 2.7: 0.60}[hp['kd_weight']]
    monkeypatch.setattr(T, 'run_student', _fake_run_student(calls, valid, test_acc=lambda hp: 1. - valid(hp)))
    res = tmp_path/'out'/'smoke'
    T.run_student('logit', 0, None, data, R.PRESETS['smoke'], res, preset='smoke')   # the suite's own run, with its test accuracy
    committed = (res/'runs'/'logit-seed0.json').read_bytes(); calls.clear()
    code,out,err = cli('tune', '--preset', 'smoke', '--only', 'logit', '--seeds', '0', '1', '--out', str(tmp_path/'out'), '--data', str(data))
    assert code == 0, err
    trained = [(c[3], c[5]) for c in calls]
    assert trained == [('logit-kd_weight-0.3-seed0', False), ('logit-kd_weight-2.7-seed0', False), ('logit-seed1', True)], trained
    assert calls[-1][2] == str(res/'tuned') and calls[-1][4]['kd_weight'] == 2.7
    import pandas as pd
    t = pd.read_csv(res/'tuning.csv'); t = t[t.experiment == 'logit']
    assert list(t.candidate) == ['reference', 'kd_weight ×1/3', 'kd_weight ×3'] and list(t.chosen) == ['no', 'no', 'yes']
    assert list(t.record) == ['runs/logit-seed0.json', 'tuning/runs/logit-kd_weight-0.3-seed0.json', 'tuning/runs/logit-kd_weight-2.7-seed0.json']
    assert list(t.valid_acc) == [0.5, 0.4, 0.6] and set(t.status) == {'done'}
    for p in (res/'tuning'/'runs').glob('*.json'): assert json.loads(p.read_text())['test_acc'] is None, p
    r0 = json.loads((res/'tuned'/'runs'/'logit-seed0.json').read_text())
    assert r0['hparams']['kd_weight'] == 2.7 and 0 <= r0['test_acc'] <= 1 and r0['tuning_record'] == 'tuning/runs/logit-kd_weight-2.7-seed0.json'
    assert (res/'tuned'/'checkpoints'/'logit-seed0.pth').exists()
    assert (res/'runs'/'logit-seed0.json').read_bytes() == committed   # the reference's record is never replaced
    snap = {p:p.read_bytes() for p in res.rglob('*.json')}; calls.clear()
    code,_,err = cli('tune', '--preset', 'smoke', '--only', 'logit', '--seeds', '0', '1', '--out', str(tmp_path/'out'), '--data', str(data))
    assert code == 0 and calls == [], (err, calls)
    assert {p:p.read_bytes() for p in res.rglob('*.json')} == snap

def test_tune_never_chooses_a_failed_candidate_and_keeps_the_reference_on_a_tie(tmp_path, monkeypatch):
    from fastkd.data import make_fake_cifar
    monkeypatch.setenv('FASTKD_CACHE', str(tmp_path/'cache'))
    data = make_fake_cifar(tmp_path/'data', n_train=3, n_test=2)
    monkeypatch.setattr(T, 'get_teacher', lambda *a, **k: (None, {}))
    calls = []
    monkeypatch.setattr(T, 'run_student', _fake_run_student(calls, lambda hp: 0.5, fail=lambda hp: hp['kd_weight'] == 2.7))
    code,_,err = cli('tune', '--preset', 'smoke', '--only', 'logit', '--no-final', '--out', str(tmp_path/'out'), '--data', str(data))
    assert code == 0, err
    import pandas as pd
    t = pd.read_csv(tmp_path/'out'/'smoke'/'tuning.csv'); t = t[t.experiment == 'logit']
    assert list(t.chosen) == ['yes', 'no', 'no'] and t.status.iloc[2].startswith('failed') and list(t.final_runs.fillna('')) == ['runs', '', '']
    assert [c[3] for c in calls] == ['logit-reference-seed0', 'logit-kd_weight-0.3-seed0', 'logit-kd_weight-2.7-seed0']   # --no-final: no final run
    calls.clear()
    code,_,err = cli('tune', '--preset', 'smoke', '--only', 'logit', '--seeds', '0', '--out', str(tmp_path/'out'), '--data', str(data))
    assert code == 0 and calls == [], (err, calls)   # the failed candidate is not retried; the chosen reference's seed 0 is promoted to runs/
    import json
    r = json.loads((tmp_path/'out'/'smoke'/'runs'/'logit-seed0.json').read_text())
    assert r['tuning_record'] == 'tuning/runs/logit-reference-seed0.json' and r['test_acc'] is not None

# --- the settings that run, and what they are compared with ----------------------------------------------------------------

REF = ROOT/'results'/'cpu'

def _copy_records(src:Path, dest:Path, exps, sub='runs'):
    "A fake new run: the committed teacher record and `exps`' records of `src/sub` copied to `dest` (as a rerun on the same machine writes them)"
    import shutil
    (dest/'runs').mkdir(parents=True, exist_ok=True); shutil.copyfile(src/'teacher.json', dest/'teacher.json')
    for e in exps:
        for p in (src/sub).glob(f'{e}-seed*.json'): shutil.copyfile(p, dest/'runs'/p.name)

def test_make_experiments_compares_every_classic_experiment(tmp_path):
    """`make experiments` reruns the classic experiments with the preset's own settings: each is compared with the committed records of
    those settings (results/cpu/runs/), although the committed summary shows the tuned setting for cosine, fitnet, combined and shifted"""
    from fastkd.suite.report import reproduction, reproduction_markdown
    if not (REF/'runs').is_dir(): pytest.skip('no committed results/cpu')
    make = (ROOT/'Makefile').read_text()
    assert 'ARGS ?= --preset cpu --seeds 0 1 2 --only classic' in make
    classic = R.select_experiments(['classic'])
    assert classic == ['baseline', 'logit', 'cosine', 'fitnet', 'attention', 'combined', 'shifted']
    _copy_records(REF, tmp_path/'cpu', classic)
    rep = reproduction(tmp_path/'cpu', REF, order=classic, final=False)   # what `run_suite` (reference settings) compares
    assert list(rep.experiment) == ['teacher'] + classic, list(rep.experiment)
    assert rep.agrees.tolist() == [True]*8 and (rep.seeds[1:] == '0 1 2').all() and (rep['diff'] == 0).all(), rep
    assert reproduction_markdown(rep).rstrip().endswith('8 of 8 compared experiments agree with the reference: '
                                                        "|difference| ≤ max(2 × the reference's std over its seeds, 0.5 points).")
    tuned = [e for e in classic if (REF/'tuned'/'runs'/f'{e}-seed0.json').exists()]
    assert tuned == ['cosine', 'fitnet', 'combined', 'shifted'], tuned   # the rows the committed summary shows with their tuned setting

def test_committed_results_compared_with_themselves(tmp_path):
    "The committed run compared with itself, as its summary reads it (tuned settings where chosen) and with the preset's own settings: every experiment compared, and agrees"
    from fastkd.suite.report import reproduction, summarize
    if not (REF/'runs').is_dir(): pytest.skip('no committed results/cpu')
    for final in (True, False):
        rep = reproduction(REF, REF, final=final)
        assert rep.agrees.tolist() == [True]*len(rep) and (rep.note == '').all(), (final, rep[rep.agrees != True])
    assert set(reproduction(REF, REF).experiment) == set(summarize(REF).experiment)   # every row of the published table
    # a fake new run of the tuned settings (`fastkd run --settings tuned`): the tuned records, compared with the committed tuned ones
    _copy_records(REF, tmp_path/'cpu', ['baseline']); _copy_records(REF, tmp_path/'cpu'/'tuned', ['cosine'], sub='tuned/runs')
    (tmp_path/'cpu'/'tuned'/'teacher.json').unlink()
    rep = reproduction(tmp_path/'cpu', REF).set_index('experiment')
    assert rep.loc['cosine', 'agrees'] == True and rep.loc['cosine', 'diff'] == 0 and rep.loc['cosine', 'seeds'] == '0 1 2'

def test_list_settings_tuned_shows_the_tuning_choice():
    if not (REF/'tuning.csv').exists(): pytest.skip('no committed results/cpu/tuning.csv')
    code,out,err = cli('list', '--settings', 'tuned', '--preset', 'cpu', '--reference', str(ROOT/'results'))
    assert code == 0, err
    assert f"settings: tuned ({REF/'tuning.csv'})" in out
    assert '| cosine |' in out and 'cos_weight=6.667 | tuned: cos_weight ×1/3, best of 3' in out, out
    assert '| T=4, kd_weight=0.9 | tuned: the reference, best of 3' in out   # logit: the reference's setting won
    code,out,_ = cli('list', '--preset', 'cpu')
    assert code == 0 and '| cos_weight=20 |' in out and 'tuned:' not in out   # the default: the preset's own

def test_settings_tuned_without_a_tuning_table_is_one_line(tmp_path):
    code,_,err = cli('list', '--settings', 'tuned', '--preset', 'gpu', '--reference', str(tmp_path))
    one_line_error(code, err, f"no tuning table {tmp_path/'gpu'/'tuning.csv'}; expected the tuning.csv that `fastkd tune --preset gpu` writes there")
    code,_,err = cli('run', '--settings', 'tuned', '--preset', 'gpu', '--reference', str(tmp_path), '--data', str(tmp_path/'nowhere'), '--out', str(tmp_path/'out'))
    one_line_error(code, err, f"no tuning table {tmp_path/'gpu'/'tuning.csv'}")
    assert not (tmp_path/'out').exists()
    code,_,err = cli('run', '--settings', 'best')
    assert code == 2 and "invalid choice: 'best'" in err

def test_run_settings_tuned_runs_the_tuning_choice(tmp_path, monkeypatch):
    """`fastkd run --settings tuned` trains each experiment with the setting tuning.csv chose: another than the preset's into tuned/,
    the preset's own into runs/; a rerun resumes; `--settings reference` (the default) then trains the preset's own setting"""
    import pandas as pd
    from fastkd.data import make_fake_cifar
    from fastkd.suite import run as S
    monkeypatch.setenv('FASTKD_CACHE', str(tmp_path/'cache'))
    data = make_fake_cifar(tmp_path/'data', n_train=3, n_test=2)
    (tmp_path/'ref'/'smoke').mkdir(parents=True)
    pd.DataFrame([dict(experiment='logit', candidate='reference', settings='T=4; kd_weight=0.9', seed=0, status='done', chosen='no'),
                  dict(experiment='logit', candidate='kd_weight ×1/3', settings='T=4; kd_weight=0.3', seed=0, status='done', chosen='no'),
                  dict(experiment='logit', candidate='kd_weight ×3', settings='T=4; kd_weight=2.7', seed=0, status='done', chosen='yes'),
                  dict(experiment='cosine', candidate='reference', settings='cos_weight=20', seed=0, status='done', chosen='yes'),
                  dict(experiment='cosine', candidate='cos_weight ×3', settings='cos_weight=60', seed=0, status='done', chosen='no')]
                ).to_csv(tmp_path/'ref'/'smoke'/'tuning.csv', index=False)
    calls,views = [],[]
    monkeypatch.setattr(S, 'get_teacher', lambda *a, **k: (None, {}))
    monkeypatch.setattr(S, 'run_student', _fake_run_student(calls, lambda hp: 0.5))
    monkeypatch.setattr(S, '_estimate', lambda *a, **k: (1., 'a stand-in'))
    def report(out, figures=None, final=True, tuning=None, **k):
        from fastkd.suite.report import summarize
        views.append((final, tuning)); return summarize(out, final=final, tuning=tuning)
    monkeypatch.setattr(S, 'write_report', report)
    args = ['run', '--preset', 'smoke', '--only', 'baseline', 'logit', 'cosine', 'fitnet', '--seeds', '0', '1', '--data', str(data),
            '--out', str(tmp_path/'out'), '--reference', str(tmp_path/'ref')]
    code,out,err = cli(*args, '--settings', 'tuned')
    assert code == 0, err
    res = tmp_path/'out'/'smoke'
    got = {(c[0], c[1]): (c[2], c[4]) for c in calls}
    assert got[('logit', 0)] == (str(res/'tuned'), dict(T=4., kd_weight=2.7)) and got[('logit', 1)][0] == str(res/'tuned')
    assert got[('cosine', 0)] == (str(res), dict(cos_weight=20.)) and got[('baseline', 1)] == (str(res), {})
    assert got[('fitnet', 0)] == (str(res), R.experiment_hparams('fitnet', 'smoke'))   # not in the tuning table: the preset's own
    assert f"settings: tuned, as `fastkd tune` chose them ({tmp_path/'ref'/'smoke'/'tuning.csv'}): logit kd_weight=2.7" in out, out
    assert '(fitnet: not tuned)' in out and views == [(True, tmp_path/'ref'/'smoke')]
    assert '| T=4, kd_weight=2.7 | tuned: kd_weight ×3, best of 3 |' in out and '| cos_weight=20 | tuned: the reference\'s, best of 2 |' in out, out
    calls.clear()
    code,out,err = cli(*args, '--settings', 'tuned')
    assert code == 0 and calls == [], (err, calls)   # resumes: everything is done
    code,out,err = cli(*args)                         # the default: the preset's own settings; only logit's differ
    assert code == 0, err
    assert [(c[0], c[1], c[2], c[4]['kd_weight']) for c in calls] == [('logit', 0, str(res), 0.9), ('logit', 1, str(res), 0.9)], calls
    assert views[-1] == (False, None)

def test_run_one_experiment_to_the_end(tmp_path, monkeypatch):
    """`fastkd run --only logit` (no baseline, so no gain) trains, writes the summary and the figures that have something to show,
    says in one line that the gain figure is left out, and exits 0; a second run compares itself with the first"""
    import time
    from fastkd.data import make_fake_cifar
    monkeypatch.setenv('FASTKD_CACHE', str(tmp_path/'cache'))
    data = make_fake_cifar(tmp_path/'data', n_train=40, n_test=10)   # the smoke preset's 30 a class, and its validation split
    t0 = time.time()
    code,out,err = cli('run', '--preset', 'smoke', '--only', 'logit', '--data', str(data), '--out', str(tmp_path/'a'), '--reference', 'none')
    assert code == 0, err[-3000:]
    res = tmp_path/'a'/'smoke'
    assert (res/'runs'/'logit-seed0.json').exists() and (res/'summary.csv').exists()
    assert {p.name for p in (res/'figures').glob('*.png')} == {'train_loss.png', 'valid_accuracy.png', 'predictions.png'}
    assert f"{res/'figures'/'test_accuracy.png'}: left out: no experiment has a baseline run of the same seed" in out, out
    import shutil; (tmp_path/'b'/'smoke').mkdir(parents=True); shutil.copyfile(res/'teacher.pth', tmp_path/'b'/'smoke'/'teacher.pth')
    shutil.copyfile(res/'teacher.json', tmp_path/'b'/'smoke'/'teacher.json')   # the same teacher: only the student trains again
    code,out,err = cli('run', '--preset', 'smoke', '--only', 'logit', '--data', str(data), '--out', str(tmp_path/'b'), '--reference', str(tmp_path/'a'))
    assert code == 0, err[-3000:]
    assert 'compared experiments agree' in (tmp_path/'b'/'smoke'/'reproduction.md').read_text()
    rep = (tmp_path/'b'/'smoke'/'reproduction.md').read_text()
    assert '| logit | 0 |' in rep and 'the reference ran it with other settings' not in rep, rep
    assert time.time() - t0 < 120

def test_run_asks_before_a_long_run_on_a_terminal(tmp_path, monkeypatch):
    """On a terminal, `fastkd run` asks before a run estimated above CONFIRM_HOURS: 'n' (or nothing) stops it with nothing written,
    'y' starts it; `--yes` never asks, and neither does a run whose input is not a terminal"""
    from fastkd.data import make_fake_cifar
    from fastkd.suite import run as S
    data = make_fake_cifar(tmp_path/'data', n_train=3, n_test=2)
    calls,asked = [],[]
    monkeypatch.setattr(S, 'get_teacher', lambda *a, **k: (None, {}))
    monkeypatch.setattr(S, 'run_student', _fake_run_student(calls, lambda hp: 0.5))
    monkeypatch.setattr(S, 'write_report', lambda out, *a, **k: None)
    monkeypatch.setattr(S, 'summarize', lambda *a, **k: None)
    monkeypatch.setattr(S, '_estimate', lambda *a, **k: (C.CONFIRM_HOURS*3600 + 60, 'a stand-in'))   # just above the limit
    class Tty(io.StringIO):
        def isatty(self): return True
    def run(*extra, answer='n', tty=True):
        calls.clear(); asked.clear()
        monkeypatch.setattr(sys, 'stdin', Tty() if tty else io.StringIO())
        monkeypatch.setattr('builtins.input', lambda q: asked.append(q) or answer)
        out = tmp_path/f'out{len(list(tmp_path.iterdir()))}'
        code,o,err = cli('run', '--preset', 'smoke', '--only', 'logit', '--data', str(data), '--out', str(out), '--reference', 'none', *extra)
        assert code == 0, err
        return out,o
    out,o = run(answer='n')
    assert len(asked) == 1 and 'start? [y/N]' in asked[0] and calls == [] and not out.exists(), (asked, calls)
    assert 'not started (nothing written); --yes starts without asking' in o
    out,o = run(answer='')
    assert len(asked) == 1 and calls == [] and not out.exists()
    out,o = run(answer='y')
    assert len(asked) == 1 and [c[0] for c in calls] == ['logit']
    out,o = run('--yes')
    assert asked == [] and [c[0] for c in calls] == ['logit']
    out,o = run(tty=False)
    assert asked == [] and [c[0] for c in calls] == ['logit']
    monkeypatch.setattr(S, '_estimate', lambda *a, **k: (C.CONFIRM_HOURS*3600 - 60, 'a stand-in'))   # below the limit: no question
    out,o = run()
    assert asked == [] and [c[0] for c in calls] == ['logit']
    code,o,_ = cli('run', '--help')
    assert '--yes' in o
