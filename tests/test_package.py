"The package is what the notebooks export; the README is what nbs/index.ipynb produces."
import os, shutil, subprocess, sys, filecmp
import pytest
from pathlib import Path
from conftest import ROOT

def test_package_equals_export(tmp_path):
    pytest.importorskip('nbdev')   # not in the newest-fastai environment (`make test-newest`)
    for f in ('settings.ini', 'setup.py', 'pyproject.toml'): shutil.copy(ROOT/f, tmp_path/f)
    shutil.copytree(ROOT/'nbs', tmp_path/'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints'))
    shutil.copytree(ROOT/'fastkd', tmp_path/'fastkd', ignore=shutil.ignore_patterns('__pycache__'))
    exe = Path(sys.executable).parent/'nbdev_export'
    subprocess.run([str(exe)], cwd=tmp_path, check=True, capture_output=True)
    def pys(d): return sorted(str(p.relative_to(d)) for p in d.rglob('*.py') if '__pycache__' not in p.parts)   # subpackages too (fastkd/suite)
    got = pys(tmp_path/'fastkd')
    assert got == pys(ROOT/'fastkd')
    diff = [n for n in got if not filecmp.cmp(tmp_path/'fastkd'/n, ROOT/'fastkd'/n, shallow=False)]
    assert not diff, f'nbdev_export changes {diff}: edit nbs/, run nbdev_export, commit both'

def test_readme_is_generated_from_index():
    r = subprocess.run([sys.executable, 'tools/make_readme.py', '--check'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

def test_public_api():
    import fastkd.all as a
    for n in 'cifar10_path cifar10_dls teacher_learner student_learner resnet8 resnet20 LogitDistillCB FeatureCosineCB RegressorMSECB AttentionTransferCB'.split():
        assert n in a.__all__, n
    cbs = [o for o in a.__all__ if isinstance(getattr(a, o), type) and issubclass(getattr(a, o), a.DistillCallback) and o != 'DistillCallback']
    assert len(cbs) >= 18, cbs   # the README's 19 methods: 4 classic, 11 of the zoo (logit standardization is LogitDistillCB's option), NKD, OFD, AB, FSP
    for n in ('dkd_loss dist_loss nkd_loss standardize_logits rkd_loss pkt_loss sp_loss nst_loss cc_loss vid_loss hcl_loss '
              'crd_nce_loss ofd_loss ab_loss fsp_loss').split():
        assert n in a.__all__, n

def test_readme_is_short_and_its_quick_start_runs():
    "A README a newcomer reads in minutes, whose quick start is a cell that `nbdev_test` runs (nbs/index.ipynb)"
    import json, re
    words = len((ROOT/'README.md').read_text().split())
    assert words <= 1600, f'README.md has {words} words; expected at most 1,600: move the details into the notebooks'
    cells = json.loads((ROOT/'nbs'/'index.ipynb').read_text())['cells']
    quick = [''.join(c['source']) for c in cells if c['cell_type'] == 'code' and 'fit_one_cycle' in ''.join(c['source'])]
    assert quick, 'nbs/index.ipynb has no quick-start cell'
    for src in quick:
        assert not re.search(r'#\|\s*(eval:\s*false|slow|train|hide)\b', src), f'the quick start must run under nbdev_test and show in the README:\n{src}'
        assert 'load_learner' in src and '.export(' in src, 'the quick start ends with export -> load_learner -> predict'

def test_license_and_citation():
    lic = (ROOT/'LICENSE').read_text()
    assert 'Apache License' in lic and 'Version 2.0, January 2004' in lic, 'LICENSE: expected the Apache-2.0 text (settings.ini: license = apache2)'
    assert '```bibtex' in (ROOT/'README.md').read_text(), 'README.md: expected a BibTeX block (how to cite)'

def test_the_house_stays_small():
    "The architecture stays readable: `DistillCallback` reads in one sitting (<= 150 lines), no exported module grows past ~400 lines"
    import ast
    src = (ROOT/'fastkd'/'distill.py').read_text()
    cls = next(n for n in ast.parse(src).body if isinstance(n, ast.ClassDef) and n.name == 'DistillCallback')
    assert cls.end_lineno - cls.lineno + 1 <= 150, f'DistillCallback has {cls.end_lineno - cls.lineno + 1} lines; expected at most 150: delegate to hooks/probe/outputs/state'
    big = {str(p.relative_to(ROOT)):n for p in (ROOT/'fastkd').rglob('*.py') if p.name != '_modidx.py' and (n := len(p.read_text().splitlines())) > 450}
    assert not big, f'modules over ~400 lines: {big}; expected each concern in a module of its own'

@pytest.mark.parametrize('fastai_all', ['fastai.vision.all', 'fastai.text.all', 'fastai.tabular.all', 'fastai.collab'])
def test_star_import_keeps_fastai_names(fastai_all):
    "`from fastai.vision.all import *; from fastkd.all import *` (the import every fastai user writes) replaces no fastai name"
    import importlib
    fa,kd = importlib.import_module(fastai_all),importlib.import_module('fastkd.all')
    clash = sorted(n for n in kd.__all__ if hasattr(fa, n) and not n.startswith('_') and getattr(fa, n) is not getattr(kd, n))
    assert not clash, f'fastkd.all would replace fastai names {clash}; expected none (keep fastkd\'s in their modules)'
    ns = {}
    exec(f'from {fastai_all} import *\nfrom fastkd.all import *', ns)
    if 'set_seed' in ns: ns['set_seed'](0, reproducible=True)   # fastai's signature

def test_wheel_installs_and_runs(tmp_path):
    "The package builds as a wheel; installed in a fresh virtualenv (dependencies borrowed from this one), the README's quick start and `fastkd --help` run from it"
    import json, site, sysconfig
    whl = tmp_path/'whl'
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', str(ROOT), '-w', str(whl)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(whl.glob('fastkd-*.whl'))
    env = tmp_path/'env'
    subprocess.run([getattr(sys, '_base_executable', sys.executable), '-m', 'venv', '--without-pip', str(env)], check=True, timeout=300)
    py = env/'bin'/'python'
    env_site = Path(subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], capture_output=True, text=True, check=True).stdout.strip())
    (env_site/'_deps.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')   # torch, fastai...: this env's packages, not its editable fastkd
    r = subprocess.run([sys.executable, '-m', 'pip', '--python', str(py), 'install', '-q', '--no-deps', str(wheel)], capture_output=True, text=True, timeout=600)
    if r.returncode and 'no such option: --python' in r.stderr: pytest.skip('pip too old for --python')
    assert r.returncode == 0, r.stderr[-2000:]
    cells = json.loads((ROOT/'nbs'/'index.ipynb').read_text())['cells']
    quick = next(''.join(c['source']) for c in cells if c['cell_type'] == 'code' and 'fit_one_cycle' in ''.join(c['source']))
    code = "import fastkd, sys; assert str(fastkd.__file__).startswith(sys.prefix), fastkd.__file__\n" + quick
    e = {k:v for k,v in os.environ.items() if k != 'FASTKD_DATA'}
    r = subprocess.run([str(py), '-c', code], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=e)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'test accuracy' in r.stdout
    r = subprocess.run([str(env/'bin'/'fastkd'), '--help'], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=e)
    assert r.returncode == 0 and 'usage: fastkd' in r.stdout, r.stderr[-2000:]
