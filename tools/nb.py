#!/usr/bin/env python3
"""Edit nbdev notebooks from the shell, one cell at a time, safely beside other editors.

    python tools/nb.py show NB                      # index, id, type and first line of each cell
    python tools/nb.py get NB CELL                  # a cell's source (CELL: id or index)
    python tools/nb.py set NB CELL FILE             # replace a cell's source (outputs cleared); FILE '-' = stdin
    python tools/nb.py insert NB AFTER TYPE FILE    # new cell (TYPE code|markdown) after cell AFTER (-1: at the top)
    python tools/nb.py append NB TYPE FILE          # new cell before the final `nbdev_export` cell (or at the end)
    python tools/nb.py delete NB CELL
    python tools/nb.py new NB MODULE TITLE SUMMARY  # skeleton: title, default_exp, export imports, hide imports, export cell
    python tools/nb.py export                       # nbdev_export, under the same lock

Every write holds an exclusive lock (/tmp/fastkd-nb.lock), so several people (or agents) can edit notebooks
and export at once without losing each other's cells."""
import sys, json, fcntl, uuid, subprocess, contextlib
from pathlib import Path

LOCK = '/tmp/fastkd-nb.lock'

@contextlib.contextmanager
def locked():
    with open(LOCK, 'w') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try: yield
        finally: fcntl.flock(f, fcntl.LOCK_UN)

def read(p): return json.loads(Path(p).read_text())
def write(p, nb): Path(p).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
def src(text): return text.splitlines(keepends=True)
def cell(typ, text):
    c = dict(cell_type=typ, id=uuid.uuid4().hex[:8], metadata={}, source=src(text.rstrip('\n')))
    if typ == 'code': c.update(execution_count=None, outputs=[])
    return c
def find(nb, key):
    cs = nb['cells']
    for i,c in enumerate(cs):
        if c.get('id') == key: return i
    try: i = int(key)
    except ValueError: sys.exit(f"no cell with id {key!r}")
    if not -len(cs) <= i < len(cs): sys.exit(f"no cell {i}: the notebook has {len(cs)} cells")
    return i % len(cs)
def text(f): return sys.stdin.read() if f == '-' else Path(f).read_text()

def main(a):
    if not a or a[0] in ('-h','--help'): print(__doc__); return
    cmd = a[0]
    if cmd == 'export':
        with locked(): sys.exit(subprocess.call([str(Path(sys.executable).parent/'nbdev_export')]))
    nbp = a[1]
    if cmd == 'show':
        for i,c in enumerate(read(nbp)['cells']):
            first = ''.join(c['source']).split('\n')
            print(f"{i:3d} {c.get('id','')} {c['cell_type'][:4]} {first[0][:90]}" + (f"  (+{len(first)-1} lines)" if len(first) > 1 else ''))
        return
    if cmd == 'get': nb = read(nbp); print(''.join(nb['cells'][find(nb, a[2])]['source'])); return
    with locked():
        if cmd == 'new':
            mod,title,summary = a[2],a[3],a[4]
            if Path(nbp).exists(): sys.exit(f"{nbp} exists")
            nb = dict(cells=[cell('markdown', f"# {title}\n\n> {summary}"), cell('code', f"#| default_exp {mod}"),
                             cell('code', "#| export\nfrom __future__ import annotations"),
                             cell('code', "#| hide\nfrom nbdev.showdoc import *\nfrom fastcore.test import *"),
                             cell('code', "#| hide\nimport nbdev; nbdev.nbdev_export()")],
                      metadata=dict(kernelspec=dict(display_name='python3', language='python', name='python3')),
                      nbformat=4, nbformat_minor=5)
            write(nbp, nb); return
        nb = read(nbp); cs = nb['cells']
        if cmd == 'set':
            c = cs[find(nb, a[2])]; c['source'] = src(text(a[3]).rstrip('\n'))
            if c['cell_type'] == 'code': c['outputs'],c['execution_count'] = [],None
        elif cmd == 'insert':
            i = -1 if a[2] == '-1' else find(nb, a[2]); cs.insert(i+1, cell(a[3], text(a[4])))
            print(cs[i+1]['id'])
        elif cmd == 'append':
            last = ''.join(cs[-1]['source']) if cs else ''
            i = len(cs)-1 if 'nbdev_export' in last else len(cs)
            cs.insert(i, cell(a[2], text(a[3]))); print(cs[i]['id'])
        elif cmd == 'delete': cs.pop(find(nb, a[2]))
        else: sys.exit(f"unknown command {cmd!r}; see --help")
        write(nbp, nb)

if __name__ == '__main__': main(sys.argv[1:])
