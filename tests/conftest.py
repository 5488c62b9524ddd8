import os, pytest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: needs the real CIFAR-10 (FASTKD_DATA); skipped without it')

@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    "Tests never write the user's ~/.cache"
    monkeypatch.setenv('FASTKD_CACHE', str(tmp_path/'cache'))

@pytest.fixture
def real_data():
    p = os.environ.get('FASTKD_DATA')
    if not p or not Path(p).is_dir(): pytest.skip('FASTKD_DATA is not set to a CIFAR-10 folder')
    return Path(p)
