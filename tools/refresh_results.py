#!/usr/bin/env python3
"""After new runs land in results/cpu (e.g. `fastkd run --preset cpu --only zoo --seeds 0 1 2 --out results --figures figures`):
rewrite its summary and figures, put the summary table into the README (via nbs/index.ipynb) and nbs/13_results.ipynb with a
paragraph on the zoo rows. Then run `make docs NBS="nbs/13_results.ipynb nbs/12_report.ipynb nbs/index.ipynb"` and the tests."""
import os
from pathlib import Path
from fastkd.experiments import EXPERIMENTS
from fastkd.report import write_report
res = Path('results/cpu')
order = [e for e in EXPERIMENTS if any((res/'runs').glob(f'{e}-seed*.json'))]
df = write_report(res, Path('figures'), path=os.environ['FASTKD_DATA'], order=order)
print(df.to_string())
import json, re, subprocess, sys
import pandas as pd
from pathlib import Path

table = Path('results/cpu/summary.md').read_text().strip()
df = pd.read_csv('results/cpu/summary.csv')
from fastkd.experiments import select_experiments
zoo = [e for e in select_experiments(['zoo']) if e != 'baseline' and e in set(df.experiment)]
base = df[df.experiment=='baseline'].iloc[0]
def row(e):
    r = df[df.experiment==e].iloc[0]
    n = int(r.n_seeds)
    return f"{e} {100*r.test_acc:.2f} ± {100*r.test_std:.2f}% ({n} seed{'s' if n > 1 else ''}, {r.gain_pts:+.2f} points over the baseline of the same seed{'s' if n > 1 else ''})"
allzoo = [e for e in select_experiments(['zoo']) if e != 'baseline']
missing = [e for e in allzoo if e not in set(df.experiment)]
full = [e for e in zoo if int(df[df.experiment==e].iloc[0].n_seeds) >= 3]
status = (f"{len(zoo)} of the {len(allzoo)} methods so far" if missing else f"all {len(allzoo)} methods, "
          + ("each with 3 seeds" if len(full) == len(zoo) else f"{len(full)} of them with 3 seeds so far" if full else "with fewer than 3 seeds each so far"))
rest = ((f"The methods not run yet ({', '.join(missing)}) and the missing seeds continue" if missing else
         "The missing seeds continue") + " with the same command, which skips what is done. ") if missing or len(full) < len(zoo) else ""
def gain(e): r = df[df.experiment==e].iloc[0]; return float(r.gain_pts),float(r.gain_std)
def ranking():
    "What the table says, in words, once every method has its 3 seeds: ranked by paired gain, against logit KD and KD + AT"
    if missing or len(full) < len(zoo) or not {'logit','combined'} <= set(df.experiment): return ""
    rank = sorted(zoo, key=lambda e: -gain(e)[0])
    (gl,sl),(gc,sc) = gain('logit'),gain('combined')
    above = [e for e in rank if gain(e)[0] > gl]
    close = all(gain(e)[0] - gl < max(sl, gain(e)[1]) for e in above)
    beat_c,hurt = [e for e in rank if gain(e)[0] > gc],[e for e in rank if gain(e)[0] < 0]
    return ("Ranked by paired gain: " + ', '.join(f"{e} {gain(e)[0]:+.2f}" for e in rank) + ". "
      + (f"{len(above)} of them gain{'s' if len(above) == 1 else ''} more than plain logit KD ({gl:+.2f} ± {sl:.2f}): {', '.join(above)}"
         + ((", by less than the larger of the two spreads over seeds: not shown to beat it on this schedule" if len(above) == 1 else
             ", each by less than the larger of the two spreads over seeds: none shown to beat it on this schedule") if close else "") + "; "
         if above else f"None gains more than plain logit KD ({gl:+.2f} ± {sl:.2f}); ")
      + (f"{', '.join(beat_c)} gain{'s' if len(beat_c) == 1 else ''} more than logit KD + attention transfer ({gc:+.2f} ± {sc:.2f}). " if beat_c
         else f"none gains more than logit KD + attention transfer ({gc:+.2f} ± {sc:.2f})"
              + (", the suite's best. " if gc >= df.gain_pts.max() else ". "))
      + (f"{', '.join(hurt)} end{'s' if len(hurt) == 1 else ''} below the baseline. " if hurt else ""))
zoo_par = ("**The method zoo** (`fastkd run --preset cpu --only zoo --seeds 0 1 2 --out results --figures figures`, each method with its reference's hyper-parameters, `fastkd list`), "
  f"{status}: " + '; '.join(row(e) for e in zoo) + ". " + ranking()
  + ("A single run's test accuracy moves by a few tenths of a point for no reason (see Reproducibility): a row with one seed is an indication, not yet a comparison. " if len(full) < len(zoo) else "")
  + rest +
  "Their `s/epoch` was measured while other work shared the machine's two cores (about 2-4× the unloaded time); `benchmarks/bench_zoo_cpu.txt` has each method's cost measured side by side. "
  "DKD with mdistiller's generic β = 8 and no warm-up collapsed to chance accuracy within two epochs at this preset's learning rate (validation accuracy 15.9%, then 10.0%; stopped, not recorded); the suite uses mdistiller's configuration for resnet56 → resnet20 (β = 2). "
  "CC's term (computed on two trainable embedding heads, as RepDistiller sets CC up, weight 100) logged below 0.0001 from the second epoch on (seed 0), so on this schedule it adds almost nothing to the loss; whether the heads align to shrink it was not investigated.")
def swap_table(s):
    lines = s.split('\n'); out = []; i = 0
    while i < len(lines):
        if lines[i].startswith('| experiment | what |'):
            while i < len(lines) and lines[i].startswith('|'): i += 1
            out.extend(table.split('\n')); continue
        out.append(lines[i]); i += 1
    return '\n'.join(out)
def edit(nbp, f):
    nb = json.loads(Path(nbp).read_text())
    f(nb['cells'])
    Path(nbp).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
def src(c): return ''.join(c['source'])
def set_src(c, s): c['source'] = s.splitlines(keepends=True)
def results_nb(cells):
    for c in cells:
        if c['cell_type'] == 'markdown' and '| experiment | what |' in src(c): set_src(c, swap_table(src(c)))
    zc = [c for c in cells if c['cell_type'] == 'markdown' and src(c).startswith('**The method zoo**')]
    if zc: set_src(zc[0], zoo_par)
    else:
        i = next(i for i,c in enumerate(cells) if src(c).startswith('## The experiments, and what they showed'))
        cells.insert(i+1, dict(cell_type='markdown', id='a11c0e5a', metadata={}, source=zoo_par.splitlines(keepends=True)))
def index_nb(cells):
    for c in cells:
        s = src(c)
        if c['cell_type'] == 'markdown' and '| experiment | what |' in s:
            s = swap_table(s)
            s = re.sub(r'\n+\*\*The method zoo\*\*[^\n]*\n+', '\n\n', s)   # the old paragraph and its blank lines
            k = s.index('![test accuracy]')
            s = s[:k].rstrip('\n') + '\n\n' + zoo_par + '\n\n' + s[k:]   # one blank line each side, however often it runs
            set_src(c, s)
edit('nbs/13_results.ipynb', results_nb); edit('nbs/index.ipynb', index_nb)
subprocess.run([sys.executable, 'tools/make_readme.py'], check=True)
print(zoo_par)
