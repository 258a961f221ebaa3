"""Helpers for tests of the command-line entry points: running a CLI, asserting its one-line
errors, simulated faults (a full disk on the .partial write) and real ones on a tmpfs."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import REPO, subprocess_env

__all__ = ["error_lines", "assert_one_error_line", "run", "run_patched", "read_only_under",
           "needs_mount",
           "run_on_tmpfs", "tmpfs_contents", "DISK_FULL_ON_PARTIAL"]


def error_lines(result, cmd):
    """The `<cmd>: error:` lines of a finished CLI, asserting there is no traceback."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return [line for line in result.stderr.splitlines() if line.startswith(f"{cmd}: error:")]


def assert_one_error_line(result, cmd, *fragments):
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    lines = error_lines(result, cmd)
    assert len(lines) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def run(cmd, timeout=300, **kwargs):
    return subprocess.run(cmd, cwd=REPO, env=subprocess_env(TF_CPP_MIN_LOG_LEVEL="3"),
                          capture_output=True, text=True, timeout=timeout, **kwargs)


# A CLI run in a process whose file system has been patched first: `patch` is Python code run
# before the entry point (which then runs exactly as `python -m <module>` would).
_DRIVER = textwrap.dedent("""
    import builtins, errno, io, os, runpy, sys
    {patch}
    sys.argv[0] = {module!r}
    runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
""")

# open() of a `.partial` for writing creates the file, as a real full disk does, then every
# write fails with ENOSPC (no file name: the caller must name the output).
DISK_FULL_ON_PARTIAL = textwrap.dedent("""
    _open = builtins.open
    class _Full(io.FileIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    def open(path, mode="r", *args, **kwargs):
        if str(path).endswith(".partial") and "w" in mode:
            return _Full(path, "w")
        return _open(path, mode, *args, **kwargs)
    builtins.open = open
""")


def read_only_under(path) -> str:
    """A run_patched patch: os.makedirs under `path` answers EROFS, as on a read-only mount (as
    root, chmod does not stop writes)."""
    return textwrap.dedent(f"""
        _makedirs = os.makedirs
        def makedirs(path, *args, **kwargs):
            if str(path).startswith({str(path)!r}):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return _makedirs(path, *args, **kwargs)
        os.makedirs = makedirs
    """)


def run_patched(module, patch, args, timeout=300):
    return run([sys.executable, "-c", _DRIVER.format(patch=patch, module=module), *args],
               timeout=timeout)


def _can_mount() -> bool:
    """Whether this process may mount a tmpfs in a private mount namespace (root in a container
    with CAP_SYS_ADMIN); the real-file-system tests need it."""
    if not shutil.which("unshare") or os.geteuid() != 0 or not os.path.isdir("/mnt"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(not _can_mount(), reason="cannot mount a tmpfs here "
                                 "(the simulated variants still run)")

_TMPFS_SCRIPT = """
mount -t tmpfs -o "$2" tmpfs "$1" || exit 99
where=$1; shift 2
"$@"; rc=$?
echo "tmpfs holds: $(cd "$where" && find . -mindepth 1 | sort | tr '\\n' ' ')"
exit $rc
"""


def run_on_tmpfs(mount_point, options, cmd, timeout=300):
    """`cmd` in a private mount namespace where `mount_point` is a fresh tmpfs mounted with
    `options` (e.g. "ro" or "size=100k"); the mount disappears with the process. The last line of
    stdout lists what the command left on the tmpfs."""
    os.makedirs(mount_point, exist_ok=True)
    return run(["unshare", "-m", "sh", "-c", _TMPFS_SCRIPT, "sh", str(mount_point), options,
                *map(str, cmd)], timeout=timeout)


def tmpfs_contents(result) -> list[str]:
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("tmpfs holds:"), result.stdout[-2000:]
    return last[len("tmpfs holds:"):].split()


