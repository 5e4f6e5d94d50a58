"""slarules runs on Windows and macOS too: no POSIX-only call without a guard, and the cache works there."""
from __future__ import annotations

import ast
import copy
import os
import sys

import pytest

from slarules import Engine
from slarules.packs import cache

from conftest import BASE, ROOT

# What Windows lacks (os, signal) or lacks entirely (modules); os.getuid in the cache broke every run after the first.
POSIX_ONLY = {
    "os": {"getuid", "geteuid", "getgid", "getegid", "getgroups", "fork", "forkpty", "setsid", "setpgid", "getpgid",
           "killpg", "nice", "uname", "statvfs", "getloadavg", "sysconf", "sched_getaffinity", "sched_setaffinity",
           "copy_file_range", "sendfile", "posix_fadvise", "wait3", "wait4", "WNOHANG", "O_NOFOLLOW", "chown",
           "lchown", "mkfifo", "pipe2"},
    "signal": {"SIGKILL", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGQUIT", "SIGPIPE", "alarm",
               "setitimer", "pthread_kill", "pthread_sigmask"},
}
POSIX_MODULES = {"fcntl", "resource", "termios", "pwd", "grp", "pty", "tty", "posix", "syslog"}


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside `if` on sys.platform / os.name / hasattr, or a `try` that catches the AttributeError or ImportError."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.If) and node in parent.body:
            test = ast.unparse(parent.test)
            if "sys.platform" in test or "os.name" in test or "hasattr(" in test:
                return True
        if isinstance(parent, ast.Try) and node in parent.body:
            caught = " ".join(ast.unparse(h.type) for h in parent.handlers if h.type is not None)
            if "AttributeError" in caught or "ImportError" in caught:
                return True
        node = parent
    return False


def _unguarded_posix_calls() -> list[str]:
    found = []
    for path in sorted((ROOT / "slarules").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                posix = node.attr in POSIX_ONLY.get(node.value.id, ())
            elif isinstance(node, ast.Import):
                posix = any(a.name.split(".")[0] in POSIX_MODULES for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                posix = (node.module or "").split(".")[0] in POSIX_MODULES or (
                    node.module in POSIX_ONLY and any(a.name in POSIX_ONLY[node.module] for a in node.names))
            else:
                continue
            if posix and not _guarded(node, parents):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_posix_only_call_without_a_guard():
    assert _unguarded_posix_calls() == []


def test_the_scan_finds_an_unguarded_call(tmp_path, monkeypatch):
    """The scan itself can fail: an unguarded os.getuid, as the cache had, is found; a guarded one is not."""
    (tmp_path / "slarules").mkdir()
    (tmp_path / "slarules" / "bad.py").write_text(
        "import os, sys\nimport fcntl\nuid = os.getuid()\n"
        "if sys.platform != 'win32':\n    ok = os.getuid()\n"
        "try:\n    import resource\nexcept ImportError:\n    pass\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _unguarded_posix_calls() == ["slarules/bad.py:2: import fcntl", "slarules/bad.py:3: os.getuid"]


def test_the_cache_works_on_windows_after_the_first_run(tmp_path, monkeypatch):
    """As on Windows: no os.getuid, and stat tells no owner. The second load comes from the cache."""
    monkeypatch.setenv("SLARULES_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.delattr(os, "getuid")
    first = Engine.load([ROOT / "rules"])
    [entry] = (tmp_path / "cache").glob("*.pickle")
    assert cache.load(entry.stem) is not None
    second = Engine.load([ROOT / "rules"])
    assert second.adjudicate(copy.deepcopy(BASE)).to_json() == first.adjudicate(copy.deepcopy(BASE)).to_json()


@pytest.mark.skipif(sys.platform == "win32", reason="the default location's POSIX form")
def test_the_default_cache_is_the_platforms(tmp_path, monkeypatch):
    """platformdirs' user cache directory: $XDG_CACHE_HOME/slarules on Linux, as before; the variables still rule."""
    from platformdirs import user_cache_path
    monkeypatch.delenv("SLARULES_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.directory() == user_cache_path("slarules", appauthor=False)
    if sys.platform.startswith("linux"):
        assert cache.directory() == tmp_path / "xdg" / "slarules"
    monkeypatch.setenv("SLARULES_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.directory() == tmp_path / "mine"
    monkeypatch.setenv("SLARULES_NO_CACHE", "1")
    assert cache.directory() is None
