"""Write README.md from nbs/index.ipynb (what `nbdev_readme` does, without Quarto, which cannot be
installed here). Markdown cells are copied; code cells become ```python blocks; `#| hide` cells
and `#|` directives are dropped. `python tools/make_readme.py` from the repo root;
`python tools/make_readme.py --check` exits 1 if README.md is out of date."""
import json, sys
from pathlib import Path

def readme(nb_path='nbs/index.ipynb') -> str:
    nb = json.loads(Path(nb_path).read_text())
    parts = []
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown': parts.append(src.strip())
        elif c['cell_type'] == 'code':
            lines = src.splitlines()
            if any(l.strip().startswith('#|') and 'hide' in l for l in lines): continue
            code = '\n'.join(l for l in lines if not l.strip().startswith('#|')).strip()
            if code: parts.append(f'```python\n{code}\n```')
    return '<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n' + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text = readme()
    if '--check' in sys.argv:
        if Path('README.md').read_text() != text: sys.exit('README.md is not what nbs/index.ipynb produces: run python tools/make_readme.py')
    else: Path('README.md').write_text(text)
