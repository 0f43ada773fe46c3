"""The on-disk derivation cache returns what building returns, and never a derivation from other sources."""
import pickle
import shutil

import pytest
import sympy as sp

import theory.cache as cache
from theory.derivation import Derivation


def _counted():
    calls = []

    @cache.derivation
    def square(k: int = 2) -> Derivation:
        calls.append(k)
        d = Derivation("square", "test")
        x = d.symbols["x"] = sp.Symbol("x", positive=True)
        d.define("f", x**k)
        d.check_equal("f(1) = 1", d["f"].subs(x, 1), 1)
        return d

    return square, calls


@pytest.fixture
def cache_at(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path))
    return tmp_path


def test_a_loaded_derivation_equals_the_built_one(cache_at):
    square, calls = _counted()
    built = square(3)
    fresh, calls_again = _counted()
    loaded = fresh(k=3)
    assert calls == [3] and calls_again == []
    assert loaded.expressions == built.expressions and loaded.identities == built.identities
    assert loaded.symbols["x"].is_positive


def test_another_source_key_rebuilds(cache_at, monkeypatch):
    square, _ = _counted()
    square()
    monkeypatch.setattr(cache, "source_key", lambda: "edited-theory")
    fresh, calls = _counted()
    fresh()
    assert calls == [2]


def test_a_corrupt_entry_is_rebuilt_not_raised(cache_at):
    square, _ = _counted()
    square()
    (entry,) = cache_at.rglob("*.pickle")
    entry.write_bytes(b"not a pickle")
    fresh, calls = _counted()
    assert fresh()["f"] == sp.Symbol("x", positive=True) ** 2 and calls == [2]
    assert isinstance(pickle.loads(entry.read_bytes()), Derivation)


def test_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    square, calls = _counted()
    square()
    assert cache.cache_dir() is None and calls == [2] and not any(tmp_path.iterdir())


def test_editing_any_theory_source_changes_the_key(tmp_path, monkeypatch):
    shutil.copytree(cache._THEORY, tmp_path / "theory")
    monkeypatch.setattr(cache, "_THEORY", tmp_path / "theory")
    before = cache.source_key.__wrapped__()
    with (tmp_path / "theory" / "derivation.py").open("a") as f:
        f.write("\n# edited\n")
    assert cache.source_key.__wrapped__() != before
