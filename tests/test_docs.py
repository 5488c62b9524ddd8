"""The notebooks are the documentation, committed with their outputs (`make docs`, tools/run_nbs.py): the outputs come
from the code that is in the notebooks, show what a reader needs, hold no error and stay small."""
import re, json, base64, hashlib, struct, os, configparser, copy
import pytest
from conftest import ROOT

NBS = ROOT/'nbs'
RECORD = NBS/'outputs.json'   # written by tools/run_nbs.py: per notebook, a hash of each code cell and the cells that ran
MAX_TOTAL_MB, MAX_PNG_KB, MAX_DPI, MAX_PX = 20, 200, 120, 1600   # run_nbs draws at 80 dpi, the report's files are 110

# What the issue asks the notebooks to show: a picture (PNG) and the progress table's term columns.
SHOWS = {
    '01_data.ipynb': dict(picture=True),                        # show_batch
    '02_models.ipynb': dict(html=True),                         # the parameter table
    '06_logit.ipynb': dict(columns=['kd'], picture=True),       # each callback: its column and plot_terms
    '07_cosine.ipynb': dict(columns=['cos'], picture=True),
    '08_fitnet.ipynb': dict(columns=['fitnet'], picture=True),
    '09_attention.ipynb': dict(columns=['at'], picture=True),   # and the attention maps
    '10_combined.ipynb': dict(columns=['kd','cos','fitnet','at'], picture=True, html=True),
    '12_report.ipynb': dict(picture=True),                      # the report's figures
    '13_results.ipynb': dict(html=True),                        # the results table
    '15_benchmarks.ipynb': dict(html=True),                     # the ratios
    '16_logit_methods.ipynb': dict(columns=['dkd','dist','nkd'], picture=True),
    '17_relations.ipynb': dict(columns=['rkd','pkt','sp','nst','cc'], picture=True),
    '18_vid.ipynb': dict(columns=['vid'], picture=True),
    '19_crd.ipynb': dict(columns=['crd'], picture=True),
    '20_reviewkd.ipynb': dict(columns=['review'], picture=True),
    '22_feature_methods.ipynb': dict(columns=['ofd','ab','fsp'], picture=True),
    '23_beyond_classification.ipynb': dict(columns=['kd','fitnet'], picture=True),   # segmentation, multi-label, regression
    '24_guide.ipynb': dict(html=True),                          # each method's gain and cost
    'index.ipynb': dict(columns=['kd','at']),                   # the quick start's progress table
}

def _nbs(): return {p.name:json.loads(p.read_text()) for p in sorted(NBS.glob('*.ipynb'))}
def _code(nb): return [c for c in nb['cells'] if c['cell_type'] == 'code']
def _outs(nb): return [o for c in _code(nb) for o in c.get('outputs', [])]
def _pngs(nb): return [base64.b64decode(''.join(o['data']['image/png'])) for o in _outs(nb) if 'image/png' in o.get('data', {})]
def _html(nb): return ''.join(''.join(o['data']['text/html']) for o in _outs(nb) if 'text/html' in o.get('data', {}))
def _hash(c): return hashlib.sha1(''.join(c['source']).encode()).hexdigest()[:12]   # as tools/run_nbs.py

def test_outputs_come_from_the_code_there_is():
    "Every notebook with outputs was executed by tools/run_nbs.py, and none of its code cells changed since"
    rec = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    stale = {}
    for name,nb in _nbs().items():
        with_out = [c['id'] for c in _code(nb) if c.get('outputs')]
        r = rec.get(name)
        if r is None:
            if with_out: stale[name] = f'outputs in cells {with_out}, but tools/run_nbs.py never ran it'
            continue
        now = {c['id']:_hash(c) for c in _code(nb)}
        changed = sorted(k for k in now.keys() | r['code'].keys() if now.get(k) != r['code'].get(k))
        if changed: stale[name] = f'code cells {changed} added, removed or edited since its outputs were made'
        elif set(with_out) - set(r['ran']): stale[name] = f'outputs in cells {sorted(set(with_out) - set(r["ran"]))} that did not run'
    nbs = ' '.join(f'nbs/{n}' for n in stale)
    assert not stale, f'stale outputs; run `make docs NBS="{nbs}"`:\n' + '\n'.join(f'{k}: {v}' for k,v in stale.items())

@pytest.mark.skipif(not os.environ.get('FASTKD_DATA'), reason='FASTKD_DATA is not set: the real-data (slow) cells cannot run')
def test_real_data_cells_ran_where_the_data_is():
    "Where the real CIFAR-10 is, the committed outputs include the `slow` cells (its pictures)"
    rec = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    slow = [n for n,nb in _nbs().items() if any(re.match(r'#\|\s*slow\b', l) for c in _code(nb) for l in c['source'])]
    missing = [n for n in slow if n in rec and not rec[n]['real_data']]
    assert not missing, f'run with the real data: `make docs NBS="{" ".join("nbs/"+n for n in missing)}"`'

def test_no_errors_and_small_png_figures():
    total = sum(p.stat().st_size for p in NBS.glob('*.ipynb'))
    assert total <= MAX_TOTAL_MB*2**20, f'the notebooks take {total/2**20:.1f} MB; expected at most {MAX_TOTAL_MB} MB'
    for name,nb in _nbs().items():
        for o in _outs(nb):
            assert o['output_type'] != 'error', f"{name}: an error output ({o.get('ename')}: {o.get('evalue')})"
            other = [k for k in o.get('data', {}) if k.startswith('image/') and k != 'image/png']
            assert not other, f'{name}: a {other} output; expected PNG figures'
        for png in _pngs(nb):
            assert png[:8] == b'\x89PNG\r\n\x1a\n', f'{name}: an image/png output that is not a PNG'
            assert len(png) <= MAX_PNG_KB*1024, f'{name}: a {len(png)//1024} KB figure; expected at most {MAX_PNG_KB} KB'
            w,h = struct.unpack('>II', png[16:24])
            assert max(w, h) <= MAX_PX, f'{name}: a {w}x{h} figure; expected at most {MAX_PX} pixels a side'
            i = png.find(b'pHYs')   # matplotlib writes the dpi as pixels per metre
            if i > 0: assert struct.unpack('>I', png[i+4:i+8])[0]*0.0254 <= MAX_DPI + 1, f'{name}: a figure above {MAX_DPI} dpi'

def test_the_notebooks_show_what_a_reader_needs():
    nbs = _nbs()
    with_out = [n for n,nb in nbs.items() if _outs(nb)]
    with_png = [n for n,nb in nbs.items() if _pngs(nb)]
    assert len(with_out) >= 10, f'{len(with_out)} notebooks with outputs ({with_out}); expected at least 10: run `make docs`'
    assert len(with_png) >= 5, f'{len(with_png)} notebooks with a figure ({with_png}); expected at least 5: run `make docs`'
    for name,want in SHOWS.items():
        nb = nbs[name]
        if want.get('picture'): assert _pngs(nb), f'{name}: no figure in its outputs'
        if want.get('html'): assert '<table' in _html(nb), f'{name}: no table in its outputs'
        for col in want.get('columns', []):
            assert f'<th>{col}</th>' in _html(nb), f"{name}: no progress table with a '{col}' column in its outputs"

def test_notebooks_are_clean():
    "nbdev_clean leaves every notebook as it is: outputs kept, no execution counts or stray metadata"
    clean = pytest.importorskip('nbdev.clean')
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini'); d = cfg['DEFAULT']
    for name,nb in _nbs().items():
        c = copy.deepcopy(nb)
        clean.clean_nb(c, allowed_metadata_keys=d.get('allowed_metadata_keys', '').split(),
                       allowed_cell_metadata_keys=d.get('allowed_cell_metadata_keys', '').split(), clean_ids=True)
        assert c == nb, f'{name} is not clean: run `nbdev_clean --fname nbs/{name}`'

def test_results_table_is_the_committed_summary():
    "The table 13_results shows (its `df` output) holds the test accuracies of results/cpu/summary.csv"
    import csv
    nb = _nbs()['13_results.ipynb']
    rows = list(csv.DictReader((ROOT/'results'/'cpu'/'summary.csv').open()))
    html = _html(nb)
    assert '<table' in html, '13_results.ipynb shows no table: run `make docs NBS=nbs/13_results.ipynb`'
    for r in rows:   # pandas shows floats with 6 decimals
        assert f"<td>{r['experiment']}</td>" in html and f"{float(r['test_acc']):.6f}" in html, \
            f"13_results.ipynb shows another {r['experiment']} row than results/cpu/summary.csv: run `make docs NBS=nbs/13_results.ipynb`"

# --- prose that agrees with the numbers (issue 27): a number written in prose is one the committed records give
GENERATED = '**What the ranking says** (generated'   # 13_results' paragraph written by tools/refresh_results.py from the records
ACC = re.compile(r'(?<![\d.])(\d{2}\.\d{2})(?=\s*(?:%|±))')        # an accuracy in %: `79.81%`, `79.81 ± 0.34`
GAIN = re.compile(r'(?<![\w.\d])([+\-−]\d{1,2}\.\d{2})(?![\d])')     # a signed gain in points, two decimals: `+3.21`, `−0.14`

def _prose(path):
    "The prose of a notebook's markdown cells or of the README: no code blocks, and not the generated paragraph"
    if path.suffix == '.ipynb':
        text = '\n\n'.join(''.join(c['source']) for c in json.loads(path.read_text())['cells'] if c['cell_type'] == 'markdown')
    else: text = path.read_text()
    text = re.sub(r'```.*?```', '', text, flags=re.S)
    return '\n'.join(l for l in text.split('\n') if not l.startswith(GENERATED))

def _allowed():
    "Accuracies (%) and gains (points) as the committed summary.csv and tuning.csv hold them, to two decimals"
    import pandas as pd
    s = pd.read_csv(ROOT/'results/cpu/summary.csv'); t = pd.read_csv(ROOT/'results/cpu/tuning.csv', keep_default_na=False)
    acc = {f'{100*v:.2f}' for c in ('test_acc', 'valid_best', 'valid_last') for v in s[c].dropna()}
    acc |= {f'{100*float(v):.2f}' for c in ('valid_acc', 'valid_acc_best') for v in t[c] if v != ''}
    gain = {f'{v:+.2f}' for c in ('gain_pts', 'gain_lo', 'gain_hi') for v in s[c].dropna()}
    return acc,gain

@pytest.mark.parametrize('name', ['README.md', 'nbs/13_results.ipynb', 'nbs/24_guide.ipynb'])
def test_numbers_in_prose_are_in_the_records(name):
    "Every accuracy (`NN.NN%`, `NN.NN ±`) and signed gain (`+N.NN`) in the prose is one of results/cpu/summary.csv (or a candidate's validation accuracy in tuning.csv)"
    acc,gain = _allowed(); text = _prose(ROOT/name)
    bad = sorted({m for m in ACC.findall(text) if m not in acc} | {m for m in GAIN.findall(text) if m.replace('−', '-') not in gain})
    assert not bad, f'{name}: numbers in prose that results/cpu/summary.csv and tuning.csv do not hold: {bad}'

def test_the_checks_find_numbers():
    "The patterns catch what they are meant to, so that the test above is not vacuous"
    test = 'DIST 80.16 ± 0.13%, +3.57 [+2.90, +4.23]; shifted −0.14; 12.5% of 3.20 s; a 1.10 ratio; v2.8.7'
    assert ACC.findall(test) == ['80.16'] and GAIN.findall(test) == ['+3.57', '+2.90', '+4.23', '−0.14']
    assert len(ACC.findall(_prose(ROOT/'nbs/13_results.ipynb'))) > 40 and len(GAIN.findall(_prose(ROOT/'README.md'))) > 40

def test_no_not_yet_in():
    "No 'not yet in' anywhere in the README or the notebooks' sources: every method the docs name is in the suite"
    hits = [n for n,nb in _nbs().items() if any('not yet in' in ''.join(c['source']).lower() for c in nb['cells'])]
    hits += ['README.md'] if 'not yet in' in (ROOT/'README.md').read_text().lower() else []
    assert not hits, f"'not yet in' in {hits}"

def test_help_shows_the_parameters():
    "`help()` on a public callback or function, once `fastkd.all` is imported, lists its parameters with their meaning (docments appended to `__doc__`)"
    import pydoc
    import fastkd.all as A
    for o,want in ((A.DecoupledKDCB, 'beta (float, default 8.0): weight of NCKD'), (A.LogitDistillCB, 'T (float'), (A.cifar10_dls, 'Parameters:'),
                   (A.ReviewKDCB, 'warmup (float')):
        assert want in pydoc.render_doc(o, renderer=pydoc.plaintext), (o.__name__, o.__doc__)
