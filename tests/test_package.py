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
