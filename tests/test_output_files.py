"""The output primitives: a lock two processes cannot both hold, files never torn."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap

import pytest

from slarules.errors import OutputError
from slarules.output import files
from slarules.output.lock import OutputLock, lock_file


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    out = tmp_path / "verdicts.jsonl"
    holder = textwrap.dedent(f"""
        import sys, time
        from slarules.output.lock import OutputLock
        with OutputLock([{str(out)!r}], "slarules batch"):
            print("held", flush=True)
            sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        other = tmp_path / "x" / ".." / "verdicts.jsonl"     # another spelling of the same output
        (tmp_path / "x").mkdir()
        with pytest.raises(OutputError) as caught:
            OutputLock([tmp_path / "errors.jsonl", other], "slarules batch").acquire()
        assert f"process {proc.pid}" in str(caught.value) and "slarules batch" in str(caught.value)
        # nothing of the refused set is held: its other output can be locked at once
        with OutputLock([tmp_path / "errors.jsonl"], "test"):
            pass
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    with OutputLock([out], "test"):      # released when its holder ended
        pass


def test_a_killed_holder_leaves_no_lock(tmp_path):
    out = tmp_path / "log.jsonl"
    code = f"from slarules.output.lock import OutputLock; import os; OutputLock([{str(out)!r}], 'x').acquire(); os._exit(0)"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert lock_file(out).exists()
    with OutputLock([out], "test"):
        pass


def test_an_atomic_file_is_old_or_complete(tmp_path, monkeypatch):
    final = tmp_path / "stations.csv"
    final.write_bytes(b"old\n")
    real_write = os.write

    with pytest.raises(OutputError) as caught:
        with files.atomic_file(final) as out:
            out.write(b"new" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")
    assert final.read_bytes() == b"old\n" and str(final) in str(caught.value)
    assert "No space left" in str(caught.value)
    files.write_atomically(final, b"new\n")
    assert final.read_bytes() == b"new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stations.csv"]
    assert os.write is real_write


@pytest.mark.parametrize("fail_at", [0, 1, 2])
def test_an_append_that_fails_is_cut_back_without_a_flush(tmp_path, monkeypatch, fail_at):
    log = tmp_path / "decisions.jsonl"
    log.write_bytes(b'{"a": 1}\n')
    calls = {"n": 0}
    real_write, real_fsync = os.write, os.fsync

    def failing_write(fd, data):
        calls["n"] += 1
        if calls["n"] > fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(data)[: max(1, len(data) // 2)])     # short writes too

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(OutputError) as caught:
        files.append_whole(log, [b'{"b": 2}\n', b'{"c": 3}\n'])
    monkeypatch.setattr(os, "write", real_write)
    assert log.read_bytes() == b'{"a": 1}\n'
    assert "nothing was added" in str(caught.value) and str(log) in str(caught.value)
    assert os.fsync is real_fsync
    files.append_whole(log, [b'{"b": 2}\n'])
    assert log.read_bytes() == b'{"a": 1}\n{"b": 2}\n'


def test_a_failed_fsync_of_an_append_cuts_it_back(tmp_path, monkeypatch):
    log = tmp_path / "decisions.jsonl"
    log.write_bytes(b"x\n")
    real_fsync = os.fsync
    state = {"failed": False}

    def fsync_once(fd):
        if not state["failed"]:
            state["failed"] = True
            raise OSError(errno.EIO, "Input/output error")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_once)
    with pytest.raises(OutputError, match="Input/output error"):
        files.append_whole(log, [b"y\n"])
    assert log.read_bytes() == b"x\n"


@pytest.mark.parametrize("kernel_copy", [True, False])
def test_a_part_is_appended_whole_then_removed(tmp_path, monkeypatch, kernel_copy):
    if not kernel_copy:      # another OS or file system: the copy through os.write takes over
        def refuse(*args):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    out_path, part = tmp_path / "out.jsonl", tmp_path / "1.jsonl"
    out_path.write_bytes(b"first\n")
    part.write_bytes("第二 line\n".encode() * 5000)
    with files.Appender(out_path) as out:
        out.append_file(part)
        out.write(b"last\n")
        assert out.size == 6 + len("第二 line\n".encode()) * 5000 + 5
    assert out_path.read_bytes() == b"first\n" + "第二 line\n".encode() * 5000 + b"last\n"
    assert not part.exists()


def test_a_full_disk_in_the_kernel_copy_is_the_failure_not_a_fallback(tmp_path, monkeypatch):
    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "copy_file_range", full, raising=False)
    monkeypatch.setattr(os, "write", lambda *a: pytest.fail("copied again through os.write"))
    part = tmp_path / "1.jsonl"
    part.write_bytes(b"x\n")
    with files.Appender(tmp_path / "out.jsonl") as out, pytest.raises(OutputError) as caught:
        out.append_file(part)
    assert "out.jsonl" in str(caught.value) and "No space left" in str(caught.value) and part.exists()
