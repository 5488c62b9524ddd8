"The package is what the notebooks export; the README is what nbs/index.ipynb produces."
import shutil, subprocess, sys, filecmp
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
    got = sorted(p.name for p in (tmp_path/'fastkd').glob('*.py'))
    assert got == sorted(p.name for p in (ROOT/'fastkd').glob('*.py'))
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
