#!/usr/bin/env python3
"""Execute nbdev notebooks in place and keep their outputs: the committed notebooks are the documentation.

    python tools/run_nbs.py [NB ...]     # default: every nbs/*.ipynb; `make docs` runs them all

Each notebook runs as `nbdev_test` runs it: execnb's `CaptureShell`, working directory nbs/, `IN_TEST=1`, the cells
of settings.ini's `tst_flags` skipped (`#| slow` ones run when the real CIFAR-10 is present, i.e. `FASTKD_DATA` is
set; `#| train` ones never), `#| eval: false` cells and the final `nbdev_export()` cell skipped. A skipped cell keeps
no output. The outputs are what Jupyter would store: matplotlib figures as PNG at 80 dpi (DPI), fastai's
progress table as the HTML table of a notebook, a display updated in place stored once, carriage returns applied.

A failing cell stops the run with the notebook, the cell and its traceback; that notebook is left as it was. Each
notebook is written under tools/nb.py's lock, only if no other editor changed its code while it ran (else: run it
again), then `nbdev_clean` tidies its metadata (outputs kept). nbs/outputs.json records, per notebook, a hash of
each code cell and the cells that ran: tests/test_docs.py checks that the committed outputs come from the code there is."""
import os, sys, json, time, copy, hashlib, traceback, subprocess, argparse, configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'
RECORD = NBS/'outputs.json'
DPI = 80
sys.path.insert(0, str(Path(__file__).resolve().parent))
from nb import locked, read, write   # tools/nb.py: the lock every notebook editor holds

def code_hash(source:str) -> str:
    "Short hash of a cell's source, as the record stores it"
    return hashlib.sha1(source.encode()).hexdigest()[:12]

def skip_flags(real_data:bool) -> set:
    "The cell flags not to run: settings.ini's `tst_flags`, less `slow` when the real data is present"
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini')
    flags = set(cfg['DEFAULT'].get('tst_flags', '').split())
    return flags - {'slow'} if real_data else flags

def cells_to_run(nb:dict, flags:set) -> dict:
    "`{cell id: code to run}` of the code cells `nbdev_test` would run, in order, directives removed as it removes them"
    from fastcore.basics import AttrDict
    from nbdev.process import extract_directives
    ids = [c.get('id') for c in nb['cells']]
    if None in ids or len(set(ids)) < len(ids): raise CellError("cells without ids or with the same id; run nbdev_clean first")
    res = {}
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        c = AttrDict(copy.deepcopy(c)); c['source'] = ''.join(c['source'])
        if 'nbdev_export'+'(' in c['source']: continue
        d = extract_directives(c, remove=True)
        if d.get('eval:', [''])[0].lower() == 'false' or flags & d.keys(): continue
        res[c['id']] = c['source']
    return res

def _cr(text:str) -> str:
    "Apply carriage returns as a terminal (and Jupyter) does: later text overwrites the line from its start"
    out = []
    for line in text.replace('\r\n', '\n').split('\n'):
        s = ''
        for seg in line.split('\r'): s = seg + s[len(seg):]
        out.append(s)
    return '\n'.join(out)

def _lines(v): return v.splitlines(True) if isinstance(v, str) else v
def _mime(data:dict) -> dict:
    "A display's data as nbformat stores it: text as a list of lines, binary images base64-encoded in one string"
    import base64
    def f(k, v):
        if isinstance(v, bytes): return base64.b64encode(v).decode()
        return _lines(v) if k.startswith('text/') or k == 'image/svg+xml' else v
    return {k:f(k, v) for k,v in data.items()}

def run_cell(shell, code:str):
    "Run `code` in `shell` as a Jupyter kernel would: `(captured stdout/stderr/displays, result, quiet)`"
    from IPython.utils.capture import capture_output
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.core.displayhook import DisplayHook
    with capture_output(display=True, stdout=True, stderr=True) as cap:
        res = InteractiveShell.run_cell(shell, code, store_history=False)   # not execnb's: it drops stdout after a ';'
    try: quiet = DisplayHook.semicolon_at_end_of_expression(code)
    except Exception: quiet = False
    return cap,res,quiet

def outputs(cap, res, quiet:bool, fmt) -> list:
    "Jupyter outputs of one cell run by `run_cell`"
    outs,ids = [],{}
    for name in ('stdout','stderr'):
        text = _cr(getattr(cap, name))
        if text.strip(): outs.append(dict(output_type='stream', name=name, text=_lines(text)))
    for o in cap.outputs:   # in order; an update replaces the data of the outputs showing that display id
        did = (o.transient or {}).get('display_id')
        d = dict(output_type='display_data', data=_mime(o.data), metadata=o.metadata or {})
        if o.update and did in ids:
            for p in ids[did]: p['data'],p['metadata'] = d['data'],d['metadata']
            continue
        outs.append(d)
        if did: ids.setdefault(did, []).append(d)
    if res.result is not None and not quiet:
        data,md = fmt.format(res.result)
        outs.append(dict(output_type='execute_result', data=_mime(data), metadata=md, execution_count=None))
    return outs

SETUP = f"""
import matplotlib as _mpl
from matplotlib_inline.backend_inline import set_matplotlib_formats as _smf
_mpl.rcParams['figure.dpi'] = {DPI}
_smf('png', dpi={DPI}, metadata={{'Software': None}})   # no matplotlib version inside the PNG: same figure, same bytes
import fastprogress.fastprogress as _fp, fastai.callback.progress as _fcp
_fp.master_bar,_fp.progress_bar = _fcp.master_bar,_fcp.progress_bar = _fp.NBMasterBar,_fp.NBProgressBar   # a notebook's table
del _mpl, _smf, _fp, _fcp
"""

class CellError(Exception): pass

def execute(path:Path, flags:set):
    "Run `path`'s cells as `nbdev_test` does: the notebook read and `{cell id: (code run, outputs, execution count)}`"
    from execnb.shell import CaptureShell
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import FrontmatterProc
    nb = read(path)
    fm = getattr(NBProcessor(path, procs=FrontmatterProc, process=True).nb, 'frontmatter_', {})
    if str(fm.get('skip_exec', False)).lower() in ('true','1','yes'): return nb,None
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))   # as nbdev_test: the repository, then the notebook's folder
    shell = CaptureShell(path, mpl_format='png')
    cwd = os.getcwd(); os.chdir(path.parent)
    try:
        cap,res,_ = run_cell(shell, SETUP)
        if not res.success: raise CellError(f"the runner's setup failed: {res.error_in_exec!r}")
        ran = {}
        for n,(i,code) in enumerate(cells_to_run(nb, flags).items(), 1):
            cap,res,quiet = run_cell(shell, code)
            e = res.error_before_exec or res.error_in_exec
            if e is not None:
                tb = ''.join(traceback.format_exception(type(e), e, e.__traceback__))
                raise CellError(f"{path.name}: cell {i} failed:\n{code}\n{tb}")
            outs = outputs(cap, res, quiet, shell.display_formatter)
            for o in outs:
                if o['output_type'] == 'execute_result': o['execution_count'] = n
            ran[i] = (code, outs, n)
    finally:
        os.chdir(cwd)
        import matplotlib.pyplot as plt; plt.close('all')
    return nb,ran

def store(path:Path, ran:dict, flags:set, real_data:bool):
    "Under the lock: write the outputs into `path` if its code is what ran, then `nbdev_clean` it and update the record"
    with locked():
        nb = read(path)
        if cells_to_run(nb, flags) != {i:c for i,(c,_,_) in ran.items()}:
            sys.exit(f"run_nbs: {path.name} was edited while it ran (its code cells changed); nothing written, run it again")
        for c in nb['cells']:
            if c['cell_type'] != 'code': continue
            o = ran.get(c['id'])
            c['outputs'],c['execution_count'] = (o[1],o[2]) if o else ([],None)
        write(path, nb)
        r = subprocess.run([str(Path(sys.executable).parent/'nbdev_clean'), '--fname', str(path)], cwd=ROOT,
                           capture_output=True, text=True)
        if r.returncode or 'Failed to clean' in r.stderr: sys.exit(f"run_nbs: nbdev_clean failed on {path.name}:\n{r.stderr}")
        rec = json.loads(RECORD.read_text()) if RECORD.exists() else {}
        rec[path.name] = dict(real_data=real_data, ran=[i for i in ran],
                              code={c['id']:code_hash(''.join(c['source'])) for c in nb['cells'] if c['cell_type'] == 'code'})
        rec = {k:rec[k] for k in sorted(rec) if (NBS/k).exists()}
        RECORD.write_text(json.dumps(rec, indent=1, sort_keys=True) + '\n')

def run_one(path:Path, flags:set, real_data:bool) -> str:
    "Execute and store one notebook (in this process); a line saying what was done"
    try:
        nb,ran = execute(path, flags)
        if ran is None: return 'skip_exec: left as it is'
        store(path, ran, flags, real_data)
    except CellError as e: sys.exit(f"run_nbs: {e}")
    return f"{len(ran)} cells run, {sum(1 for _,o,_ in ran.values() if o)} with outputs"

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('nbs', nargs='*', help='notebooks to run (default: every nbs/*.ipynb)')
    p.add_argument('--one', action='store_true', help=argparse.SUPPRESS)   # internal: run one notebook in this process
    a = p.parse_args(argv)
    paths = [Path(o).resolve() for o in a.nbs] or sorted(NBS.glob('*.ipynb'))
    for o in paths:
        if not o.is_file() or o.suffix != '.ipynb': sys.exit(f"run_nbs: {o} is not a notebook; expected a path such as nbs/06_logit.ipynb")
    real_data = bool(os.environ.get('FASTKD_DATA'))
    flags = skip_flags(real_data)
    os.environ['IN_TEST'] = '1'
    if a.one: print(run_one(paths[0], flags, real_data), flush=True); return
    print(f"run_nbs: {len(paths)} notebook(s); cells flagged {' '.join(sorted(flags)) or 'nothing'} skipped"
          f"{'' if real_data else ' (FASTKD_DATA unset: no real data)'}; figures PNG at {DPI} dpi", flush=True)
    total = time.time()
    for path in paths:   # one fresh process per notebook, as a kernel: no state leaks from one notebook to the next
        t = time.time()
        r = subprocess.run([sys.executable, __file__, '--one', str(path)], stdout=subprocess.PIPE, text=True)
        if r.returncode: sys.exit(f"run_nbs: stopped at {path.name}")
        print(f"{path.name}: {time.time()-t:.1f} s ({(r.stdout.strip().splitlines() or [''])[-1]})", flush=True)
    print(f"run_nbs: {len(paths)} notebook(s) in {time.time()-total:.0f} s", flush=True)

if __name__ == '__main__': main()
