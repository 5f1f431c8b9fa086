"""gradflow.save and gradflow.load and what is at the path: never destroy it, never hang on it.

save follows symlinks (the link keeps pointing at the new checkpoint), refuses directories,
devices, FIFOs and sockets before it writes anything, refuses a read-only file as open() would,
keeps the old file's mode (and owner, as root), replaces a hard-linked file rather than writing
into it, names the caller's path (never the temporary file) in its errors, and removes the
temporary files that killed saves left once their process is gone. load opens regular files
only: a FIFO or /dev/zero is refused before it is opened. None of this needs root; as root,
the /dev/null test is still safe (refused before anything is created; guarded besides).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time

import pytest

import gradflow as gf
from gradflow import serialization
from gradflow.serialization import CheckpointError, load, save

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
posix_only = pytest.mark.skipif(os.name != "posix", reason="FIFOs, sockets, signals: POSIX")


def _epoch(path) -> int:
    return load(path)["epoch"]


def _names(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ---- symlinks ------------------------------------------------------------------------------
def test_a_symlink_keeps_pointing_at_the_new_checkpoint(tmp_path):
    (tmp_path / "runs").mkdir()
    real = tmp_path / "runs" / "epoch.ckpt"
    link = tmp_path / "latest.ckpt"
    save({"epoch": 1}, real)
    link.symlink_to(real)
    save({"epoch": 2}, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert _epoch(real) == 2 and _epoch(link) == 2  # before: the link became a file, real kept 1
    # the temporary went beside the real file and is gone; nothing beside the link either
    assert _names(tmp_path / "runs") == ["epoch.ckpt"]
    assert _names(tmp_path) == ["latest.ckpt", "runs"]


def test_a_relative_symlink_through_a_symlinked_directory(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "view").symlink_to("store")
    save({"epoch": 1}, tmp_path / "store" / "a.ckpt")
    (tmp_path / "store" / "b.ckpt").symlink_to("a.ckpt")
    save({"epoch": 2}, tmp_path / "view" / "b.ckpt")
    assert (tmp_path / "store" / "b.ckpt").is_symlink()
    assert _epoch(tmp_path / "store" / "a.ckpt") == 2


def test_a_dangling_symlink_gets_its_target_created(tmp_path):
    link = tmp_path / "latest.ckpt"
    link.symlink_to("epoch-1.ckpt")  # as open(link, "wb") would do
    save({"epoch": 1}, link)
    assert link.is_symlink() and _epoch(tmp_path / "epoch-1.ckpt") == 1


def test_a_symlink_loop_is_an_error_naming_the_path(tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OSError, match="a'") as caught:
        save(1, tmp_path / "a")
    assert caught.value.errno == errno.ELOOP and caught.value.filename == str(tmp_path / "a")
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()


# ---- directories, devices, FIFOs, sockets: refused, untouched ------------------------------
def test_a_directory_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "inside").write_text("kept")
    with pytest.raises(IsADirectoryError, match=r"can't save to .*d: it is a directory"):
        save(1, tmp_path / "d")
    assert (tmp_path / "d" / "inside").read_text() == "kept"
    assert _names(tmp_path) == ["d"]


def test_a_symlink_to_a_directory_is_refused_and_kept(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "link").symlink_to("d")
    with pytest.raises(IsADirectoryError, match=r"link \(which leads to .*d\): it is a directory"):
        save(1, tmp_path / "link")  # before: the symlink was silently replaced by a file
    assert (tmp_path / "link").is_symlink() and (tmp_path / "d").is_dir()
    assert _names(tmp_path) == ["d", "link"]


@posix_only
def test_a_fifo_is_refused_and_kept(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match=r"pipe: it is a FIFO \(named pipe\), not a regular"):
        save(1, fifo)  # before: the FIFO became a regular file
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert _names(tmp_path) == ["pipe"]  # nothing was created beside it


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_a_socket_is_refused_and_kept(tmp_path):
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(CheckpointError, match="s: it is a socket, not a regular file"):
            save(1, path)
        assert stat.S_ISSOCK(os.lstat(path).st_mode)


@pytest.fixture
def nothing_written_under_dev(monkeypatch):
    """Belt and braces for running as root: no file is created in /dev and nothing is renamed
    there, even if the refusal below ever regressed."""
    real_open, real_replace = os.open, os.replace

    def guarded_open(path, flags, *args, **kwargs):
        assert not (str(path).startswith("/dev/") and flags & os.O_CREAT), path
        return real_open(path, flags, *args, **kwargs)

    def guarded_replace(source, target, *args, **kwargs):
        assert not str(target).startswith("/dev/"), target
        return real_replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "replace", guarded_replace)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
@pytest.mark.usefixtures("nothing_written_under_dev")
def test_dev_null_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(CheckpointError, match="/dev/null: it is a character device, not a"):
        save({"w": gf.ones(2)}, "/dev/null")  # before, as root: /dev/null became a file
    link = tmp_path / "null"
    link.symlink_to("/dev/null")
    with pytest.raises(CheckpointError, match=r"null \(which leads to /dev/null\): it is a char"):
        save({"w": gf.ones(2)}, link)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert link.is_symlink() and _names(tmp_path) == ["null"]


# ---- what the replaced file keeps ----------------------------------------------------------
@posix_only
@pytest.mark.parametrize(
    ("mode", "umask"),
    [(0o600, 0o022), (0o640, 0o077), (0o664, 0o022), (0o444, 0o022)],
    ids=["0600", "0640", "0664", "0444"],
)
def test_the_permission_mode_is_kept(tmp_path, mode, umask):
    path = tmp_path / "c.ckpt"
    save({"epoch": 1}, path)
    path.chmod(mode)
    if mode == 0o444 and not os.access(path, os.W_OK):
        pytest.skip("a read-only file is refused (see below); root may replace it")
    umask = os.umask(umask)  # a loose umask must not widen the mode, nor a strict one narrow it
    try:
        save({"epoch": 2}, path)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == mode  # before: 0o666 & ~umask, so 0600 -> 0644
    assert _epoch(path) == 2


@posix_only
@pytest.mark.skipif(not ROOT, reason="only root may give a file to another user")
def test_the_owner_and_group_are_kept_as_root(tmp_path):
    path = tmp_path / "c.ckpt"
    save({"epoch": 1}, path)
    os.chown(path, 65534, 65534)
    path.chmod(0o666)  # writable by us, as by anyone
    save({"epoch": 2}, path)
    assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 and _epoch(path) == 2


@posix_only
def test_a_read_only_file_is_refused_as_open_would(tmp_path):
    path = tmp_path / "c.ckpt"
    save({"epoch": 1}, path)
    path.chmod(0o444)
    if os.access(path, os.W_OK):
        pytest.skip("root (CAP_DAC_OVERRIDE) may write any file, with open() as with save")
    with pytest.raises(PermissionError, match="c.ckpt: the file is read-only"):
        save({"epoch": 2}, path)  # before: the rename replaced it
    assert _epoch(path) == 1 and _names(tmp_path) == ["c.ckpt"]


def test_a_file_access_says_is_not_writable_is_refused(tmp_path, monkeypatch):
    # the same check where the tests run as root (access(2) then says root may write it)
    path = tmp_path / "c.ckpt"
    save({"epoch": 1}, path)
    monkeypatch.setattr(os, "access", lambda p, how, **_: how != os.W_OK)
    with pytest.raises(PermissionError, match="c.ckpt: the file is read-only"):
        save({"epoch": 2}, path)
    monkeypatch.undo()
    assert _epoch(path) == 1 and _names(tmp_path) == ["c.ckpt"]


@pytest.mark.skipif(not hasattr(os, "link"), reason="no hard links")
def test_a_hard_linked_file_is_replaced_and_the_other_link_keeps_the_old_checkpoint(tmp_path):
    # The chosen behaviour (torch.save writes in place instead): the new checkpoint replaces
    # this name atomically; the other name is a snapshot (cp -al, rsnapshot, a DVC cache)
    # that must not change under it.
    path, snapshot = tmp_path / "c.ckpt", tmp_path / "snapshot.ckpt"
    save({"epoch": 1}, path)
    os.link(path, snapshot)
    save({"epoch": 2}, path)
    assert _epoch(path) == 2 and _epoch(snapshot) == 1
    assert path.stat().st_nlink == 1 and snapshot.stat().st_nlink == 1


# ---- errors name the caller's path, never the temporary ------------------------------------
def test_a_failed_write_names_the_path_not_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / "c.ckpt"
    save({"epoch": 1, "w": gf.ones(2)}, path)

    def disk_full(archive, name, array):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(serialization, "_write_array", disk_full)
    with pytest.raises(OSError) as caught:
        save({"epoch": 2, "w": gf.ones(2)}, path)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert str(path) in str(caught.value) and ".tmp" not in str(caught.value)
    assert _epoch(path) == 1 and _names(tmp_path) == ["c.ckpt"]


@posix_only
def test_an_unwritable_directory_names_the_path_not_the_temporary(tmp_path):
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0o555)
    if os.access(tmp_path / "locked", os.W_OK):
        pytest.skip("root (CAP_DAC_OVERRIDE) may write into any directory")
    try:
        with pytest.raises(PermissionError) as caught:
            save(1, tmp_path / "locked" / "c.ckpt")
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert caught.value.filename == str(tmp_path / "locked" / "c.ckpt")
    assert "must be writable" in str(caught.value) and ".tmp" not in str(caught.value)


def test_a_long_file_name_is_saved(tmp_path):
    # the temporary's name adds to the target's: before, a 240-byte name failed with
    # ENAMETOOLONG (naming the temporary)
    path = tmp_path / ("c" * 240)
    save({"epoch": 1}, path)
    save({"epoch": 2}, path)
    assert _epoch(path) == 2 and _names(tmp_path) == [path.name]


# ---- temporary files of killed saves -------------------------------------------------------
_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import gradflow as gf
    from gradflow import serialization

    path, how = sys.argv[1], sys.argv[2]
    real_write = serialization._write_array

    def write(archive, name, array):
        real_write(archive, name, array)
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        print("writing", flush=True)
        sys.stdin.readline()  # wait, mid-save, until the test says go on

    serialization._write_array = write
    gf.save({"epoch": 99, "w": gf.ones(1000)}, path)
    """
)


def _child(path, how: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _temporaries(directory) -> list[str]:
    return [name for name in _names(directory) if name.endswith(".tmp")]


@posix_only
def test_a_killed_save_leaves_a_temporary_that_the_next_save_removes(tmp_path):
    path = tmp_path / "c.ckpt"
    save({"epoch": 1}, path)
    for _ in range(3):
        child = _child(path, "kill")
        child.communicate(timeout=120)
        assert child.returncode == -signal.SIGKILL
    left = _temporaries(tmp_path)
    assert len(left) == 3 and all(name.startswith(".c.ckpt.") for name in left), left
    assert _epoch(path) == 1  # the killed saves did not touch the checkpoint
    save({"epoch": 2}, path)  # before: the leftovers stayed forever
    assert _names(tmp_path) == ["c.ckpt"] and _epoch(path) == 2


@posix_only
def test_a_temporary_that_a_live_save_is_writing_is_kept(tmp_path):
    path = tmp_path / "c.ckpt"
    save({"epoch": 1}, path)
    child = _child(path, "wait")
    try:
        assert child.stdout.readline() == "writing\n"
        [temporary] = _temporaries(tmp_path)
        assert f"-{child.pid}." in temporary  # the writer's pid is in the name
        save({"epoch": 2}, path)
        assert _temporaries(tmp_path) == [temporary] and _epoch(path) == 2
        child.communicate("go on\n", timeout=120)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0
    assert _names(tmp_path) == ["c.ckpt"] and _epoch(path) == 99  # its save went through


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_only_ours_only_for_this_target(tmp_path):
    from gradflow import _files  # the naming scheme, to plant leftovers by hand

    ours = _files._token()
    other = "0" * 8 if ours != "0" * 8 else "1" * 8
    posix = os.name == "posix"
    dead = _dead_pid() if posix else 1
    day = time.time() - _files.STALE_AFTER_S - 60
    # name -> (seconds since its last write, whether the save after it removes it)
    planted = {
        f".c.ckpt.{ours}-{dead}.000000000001.tmp": (0, posix),  # ours, its process gone
        f".c.ckpt.{other}-{os.getpid()}.000000000002.tmp": (day, True),  # elsewhere, a day old
        ".c.ckpt.000000000003.tmp": (day, True),  # the older naming, a day old
        f".c.ckpt.{ours}-{os.getpid()}.000000000004.tmp": (day, False),  # a live process
        f".c.ckpt.{other}-{dead}.000000000005.tmp": (0, False),  # elsewhere, written recently
        ".c.ckpt.000000000006.tmp": (0, False),  # the older naming, written recently
        f".d.ckpt.{ours}-{dead}.000000000007.tmp": (day, False),  # another target
        f".c.{ours}-{dead}.000000000008.tmp": (day, False),  # the target "c", not "c.ckpt"
        f".c.ckpt.{ours}-{dead}.000000000009.tmp.keep": (day, False),  # not our pattern
        f"c.ckpt.{ours}-{dead}.00000000000a.tmp": (day, False),
        ".c.ckpt.bak": (day, False),
    }
    for name, (when, _) in planted.items():
        (tmp_path / name).write_bytes(b"partial")
        if when:
            os.utime(tmp_path / name, (when, when))
    (tmp_path / f".c.ckpt.{ours}-{dead}.00000000000b.tmp").mkdir()  # not a file: kept
    save({"epoch": 1}, tmp_path / "c.ckpt")
    left = set(_names(tmp_path))
    for name, (_, removed) in planted.items():
        assert (name not in left) == removed, name
    assert f".c.ckpt.{ours}-{dead}.00000000000b.tmp" in left


# ---- load: regular files only, refused before opening --------------------------------------
def _load_in_child(path) -> str:
    """What load(path) raises, run in a child so that a regression (a FIFO's open waiting for
    a writer, /dev/zero read until memory runs out) fails the test instead of hanging it."""
    code = textwrap.dedent(
        """
        import resource, sys
        limit = 4 << 30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        import gradflow as gf
        try:
            gf.load(sys.argv[1])
        except gf.CheckpointError as exc:
            print(exc)
        """
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"load({str(path)!r}) did not return within 60 s")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@posix_only
def test_loading_a_fifo_is_refused_without_waiting(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link").symlink_to("pipe")
    for name in ["pipe", "link"]:
        message = _load_in_child(tmp_path / name)
        assert message.endswith(
            f"{name}: not a readable checkpoint: it is a FIFO (named pipe), not a regular file"
        )


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_loading_dev_zero_is_refused_without_reading():
    assert _load_in_child("/dev/zero") == (
        "/dev/zero: not a readable checkpoint: it is a character device, not a regular file"
    )


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_loading_a_socket_or_a_directory_is_refused(tmp_path):
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "s"))
        with pytest.raises(CheckpointError, match="s: not a readable checkpoint: it is a socket"):
            load(tmp_path / "s")
    with pytest.raises(CheckpointError, match="not a readable checkpoint: it is a directory"):
        load(tmp_path)


def test_loading_through_a_symlink(tmp_path):
    save({"epoch": 3}, tmp_path / "c.ckpt")
    (tmp_path / "link").symlink_to("c.ckpt")
    assert _epoch(tmp_path / "link") == 3
