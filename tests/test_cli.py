"""The `fastkd` command speaks plainly: errors a user can fix are one line on stderr, a non-zero exit and nothing written;
`--debug` (or FASTKD_DEBUG=1) shows the traceback; `--help` lists the choices and defaults. Most tests call the command's
function in this process (fast); two run it as a new process, as a user does."""
import ast, io, os, subprocess, sys, contextlib
from pathlib import Path
import pytest
from conftest import ROOT
from fastkd import experiments as E

def cli(*args):
    "Run `fastkd args` in this process; return (exit status, stdout, stderr)"
    o,e = io.StringIO(),io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        try: E.fastkd_cli(list(args)); code = 0
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
    from fastkd.distill import find_module
    from fastkd.logit import LogitDistillCB
    fail = {'layer': lambda *a, **k: find_module(resnet8(), 'layer9'), 'weight': lambda *a, **k: LogitDistillCB(resnet8(), weight=-1.)}[error]
    monkeypatch.setattr(E, 'run_suite', fail)
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
    for s in ('{smoke,cpu,gpu}', 'default: gpu on CUDA, else cpu', 'default: runs', 'default: results', 'default: 0', '--debug', 'classic', *E.EXPERIMENTS):
        assert s in flat, s

def test_list_prints_the_registry():
    code,out,_ = cli('list')
    assert code == 0
    for e in E.EXPERIMENTS.values(): assert f'| {e.name} |' in out and e.description in out

def test_default_output_is_uncommitted():
    "A default run writes into runs/<preset>, which git ignores; the committed reference is only read"
    a = E._parser().parse_args(['run'])
    assert (a.out, a.reference, a.figures) == ('runs', 'results', None)
    if not (ROOT/'.git').exists(): pytest.skip('not a git checkout')
    def ignored(f): return subprocess.run(['git', 'check-ignore', '-q', f], cwd=ROOT).returncode == 0
    assert ignored('runs/cpu/runs/logit-seed0.json') and ignored('runs/cpu/figures/test_accuracy.png')
    assert not ignored('results/cpu/runs/logit-seed0.json')

def _imports(path:Path, pkg='fastkd') -> set:
    "The fastkd modules that `path` imports, at top level or inside functions"
    found = set()
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module: found.add(n.module.split('.')[0])
        elif isinstance(n, ast.ImportFrom) and n.module and n.module.startswith(pkg + '.'): found.add(n.module.split('.')[1])
        elif isinstance(n, ast.Import): found |= {a.name.split('.')[1] for a in n.names if a.name.startswith(pkg + '.')}
    return found

def test_no_import_cycle():
    mods = {p.stem: _imports(p) for p in (ROOT/'fastkd').glob('*.py') if p.stem not in ('__init__', '_modidx')}
    assert 'experiments' not in mods['report']
    def visit(m, stack):
        assert m not in stack, f"import cycle: {' -> '.join(stack + [m])}"
        for d in mods.get(m, ()): visit(d, stack + [m])
    for m in mods: visit(m, [])

def test_console_script_in_a_new_process(tmp_path):
    "As a user runs it: exactly one line on stderr and status 1; fastai's DDP support (it needs `accelerate`) is not imported"
    env = dict(os.environ, FASTKD_CACHE=str(tmp_path/'cache')); env.pop('FASTKD_DEBUG', None)
    code = ("import sys, fastkd.experiments as E; bad = [m for m in ('fastai.distributed', 'fastkd.distributed') if m in sys.modules]; "
            "assert not bad, bad; E.fastkd_cli()")
    r = subprocess.run([sys.executable, '-c', code, 'run', '--data', str(tmp_path/'nowhere'), '--out', str(tmp_path/'out')],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith('fastkd: error: CIFAR-10 folder') and r.stderr.count('\n') == 1, r.stderr[-2000:]
    assert not (tmp_path/'out').exists()

def test_cli_works_with_fastcore_2():
    "fastcore 2 has no `fastcore.script.Param`: the command line is plain argparse"
    src = Path(E.__file__).read_text()
    assert 'fastcore.script' not in src and 'call_parse' not in src

def test_python_m_runs_the_command(tmp_path):
    "`python -m fastkd.experiments` (what torchrun launches) is the same command"
    r = subprocess.run([sys.executable, '-m', 'fastkd.experiments', 'list'], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and '| logit |' in r.stdout, r.stderr[-2000:]
