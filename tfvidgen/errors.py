"""The one error path of the command-line entry points (train, sample, evaluate, transfer, explain,
export).

Exit codes: 0 done; 1 a run stopped by what it found (train: a non-finite loss); 2 the request
cannot be carried out: a bad flag value (absl's own parse errors included), a missing or wrong
input, or an ordinary condition of the machine (read-only file system, full disk, a path that is a
file where a directory is needed, ...). Every exit 2 prints exactly one line to stderr,
`<cmd>: error: <message>`, naming the flag or path; warnings are one line `<cmd>: warning: ...`
and the run goes on. Anything else is a bug and keeps its traceback (so does everything when
TFVIDGEN_TRACEBACK=1 is set).

Files being written are written under a temporary name (`<output>.partial`) through
`atomic_output` and renamed over the output when complete, so a reader never sees half a file.
The temporary file is removed when the write fails, when the entry point ends with an error, and
on SIGTERM (then the process still dies by SIGTERM); only SIGKILL can leave a `.partial` behind,
which nothing ever reads.

Wiring an entry point:

    def main(argv):                       # raises ValueError naming the flag for bad requests
        ...

    if __name__ == "__main__":
        define_flags()
        errors.run_app(main, "sample")    # absl.app.run + one-line flag errors + main_guard

No TensorFlow import here: TF errors are recognised only when TensorFlow is already loaded.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import signal
import sys
import threading

__all__ = ["EXIT_ERROR", "fail", "warn", "describe", "main_guard", "run_app", "flags_parser",
           "atomic_output", "write_text_atomically", "register_temporary", "unregister_temporary",
           "check_output_file", "check_output_dir"]

#: exit status of every one-line error (README: "a bad flag value exits 2 with one line")
EXIT_ERROR = 2

# errno -> the words of the one-line message (after the path)
_ERRNO_TEXT = {
    errno.EEXIST: "already exists",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EISDIR: "is a directory",
    errno.ENOTDIR: "not a directory",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "no such file or directory",
    errno.ENAMETOOLONG: "file name too long",
}

# TensorFlow's file system reports errno as strerror text inside the op's message.
_TF_OS_TEXT = ("No space left on device", "Read-only file system", "Permission denied",
               "Is a directory", "Not a directory", "No such file or directory",
               "Disk quota exceeded", "File exists")


def fail(cmd: str, message: str) -> int:
    """Prints `<cmd>: error: <message>` (one line) to stderr and returns EXIT_ERROR (2)."""
    print(f"{cmd}: error: {_one_line(message)}", file=sys.stderr, flush=True)
    return EXIT_ERROR


def warn(cmd: str, message: str) -> None:
    """Prints `<cmd>: warning: <message>` (one line) to stderr; the run goes on."""
    print(f"{cmd}: warning: {_one_line(message)}", file=sys.stderr, flush=True)


def describe(exc: BaseException) -> str | None:
    """One line for an ordinary condition, None for anything else (a bug: keep the traceback).

    Ordinary: OSError with a known errno (the path and what is wrong with it) or raised with a
    message of our own; ValueError and OverflowError (their message: tfvidgen raises ValueError
    naming the flag); TensorFlow's InvalidArgumentError (the in-graph check's message, e.g. an
    export's input validation), ResourceExhaustedError (memory or disk), and TF file-system errors.
    """
    if isinstance(exc, OSError):
        return _describe_os_error(exc)
    if isinstance(exc, (ValueError, OverflowError)):
        return _one_line(str(exc)) or type(exc).__name__
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(exc, tf.errors.OpError):
        message = exc.message or ""
        if isinstance(exc, (tf.errors.InvalidArgumentError, tf.errors.ResourceExhaustedError)) \
                or any(text in message for text in _TF_OS_TEXT):
            return _tf_message(message)
    return None


def _describe_os_error(exc: OSError) -> str | None:
    if exc.errno is None or type(exc).__module__.startswith("tfvidgen."):
        # Raised by us with a message (FileNotFoundError(...), callbacks.CheckpointSaveError).
        return _one_line(str(exc)) or None
    path = exc.filename if exc.filename is not None else None
    if path is not None and exc.filename2 is not None:
        path = f"{exc.filename} -> {exc.filename2}"
    text = _ERRNO_TEXT.get(exc.errno) or (exc.strerror or "").lower()
    if path is None:
        return text or None
    return f"{path}: {text}" if text else None


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _tf_message(message: str) -> str:
    """The useful line of a TF op error: the failed assertion's own message when there is one,
    else the first line that is not TF's framing ("Graph execution error:", node lines)."""
    assertion = re.search(r"assertion failed: \[([^\]]*)\]", message)
    if assertion:
        return assertion.group(1)
    for line in message.splitlines():
        line = line.strip()
        if not line or line.startswith(("Graph execution error", "Detected at node", "<stack",
                                        "File ", "[[")):
            continue
        line = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", line)
        line = re.sub(r"\s*\[Op:[^\]]*\](\s*name:.*)?$", "", line)
        line = re.sub(r"\s*\[\[\{\{node [^}]*\}\}\]\]$", "", line)
        os_text = re.match(r"^(.*?); (" + "|".join(_TF_OS_TEXT) + r")$", line)
        if os_text:                              # "<path>; No space left on device"
            path = re.sub(r"\.tempstate\d+$", "", os_text.group(1))
            return f"{path}: {os_text.group(2).lower()}"
        return line
    return _one_line(message)


# ---- temporary files ------------------------------------------------------------------------
# Set operations are atomic under the GIL; no lock, so the SIGTERM handler can never deadlock.
_TEMPORARY: set[str] = set()


def register_temporary(path: str) -> None:
    """Marks `path` for removal if the entry point ends with an error or SIGTERM."""
    _TEMPORARY.add(os.path.abspath(path))


def unregister_temporary(path: str) -> None:
    """Forgets `path` (renamed into place, or removed by its writer)."""
    _TEMPORARY.discard(os.path.abspath(path))


def _remove_temporaries() -> None:
    paths = list(_TEMPORARY)
    _TEMPORARY.clear()
    for path in paths:
        with contextlib.suppress(OSError):
            os.remove(path)


@contextlib.contextmanager
def atomic_output(path: str, suffix: str = ".partial"):
    """Yields a temporary path beside `path` to write; renames it over `path` when the block ends
    normally, removes it when the block raises (or the process gets SIGTERM).

    Raises:
      IsADirectoryError: `path` is a directory (checked before anything is written).
    """
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    tmp = path + suffix
    register_temporary(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        if e.errno is not None and e.filename in (None, tmp):
            # write() errors carry no path, PyAV's the temporary one: name the output instead
            raise OSError(e.errno, e.strerror or os.strerror(e.errno), path) from e
        raise
    finally:
        with contextlib.suppress(OSError):
            if os.path.lexists(tmp):
                os.remove(tmp)
        unregister_temporary(tmp)



def write_text_atomically(path: str, text: str) -> None:
    """Writes `text` to `path` through atomic_output: a crash mid-write leaves the old file."""
    with atomic_output(path) as tmp, open(tmp, "w") as f:
        f.write(text)

# ---- checks before any work starts ------------------------------------------------------------
def _nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.lexists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _check_creatable_dir(flag: str, value: str, directory: str) -> None:
    existing = _nearest_existing(directory)
    if not os.path.isdir(existing):
        where = "" if existing == os.path.abspath(value) else f": {existing}"
        raise ValueError(f"{flag}={value!r}{where} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):   # also EROFS, even for root
        raise ValueError(f"{flag}={value!r}: cannot write in {existing}"
                         f" ({_access_reason(existing)})")


def _access_reason(path: str) -> str:
    try:
        st = os.statvfs(path)
        if st.f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return "permission denied"


def check_output_dir(flag: str, path: str) -> None:
    """Raises ValueError naming the flag unless `path` is, or can be created as, a directory
    this process can write in (a file in the way, a read-only file system, no permission)."""
    _check_creatable_dir(flag, path, path)


def check_output_file(flag: str, path: str, suffixes: tuple[str, ...] = ()) -> None:
    """Raises ValueError naming the flag unless `path` can be written as a file: one of
    `suffixes` (when given), not a directory, its directory creatable and writable."""
    if os.path.isdir(path):
        raise ValueError(f"{flag}={path!r} is a directory; give a file name")
    suffix = os.path.splitext(path)[1].lower()
    if suffixes and suffix not in suffixes:
        raise ValueError(f"{flag}={path!r}: expected a file name ending in "
                         f"{', '.join(suffixes)}")
    _check_creatable_dir(flag, path, os.path.dirname(os.path.abspath(path)))


# ---- running an entry point -------------------------------------------------------------------
def _traceback_wanted() -> bool:
    return os.environ.get("TFVIDGEN_TRACEBACK", "") not in ("", "0")


@contextlib.contextmanager
def _sigterm_removes_temporaries():
    """On SIGTERM: remove the registered temporary files, then die by SIGTERM as before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        _remove_temporaries()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main_guard(cmd: str):
    """Decorator for an entry point's `main(argv)`: refuses positional arguments, turns the
    ordinary conditions of `describe` into one `<cmd>: error:` line and exit 2, and removes the
    temporary files registered during the run whatever happens."""
    def decorate(main):
        @functools.wraps(main)
        def guarded(argv=("",)):
            if len(argv) > 1:
                return fail(cmd, f"unexpected arguments: {' '.join(argv[1:])} (flags are "
                                 f"written --name=value)")
            try:
                with _sigterm_removes_temporaries():
                    return main(argv)
            except Exception as e:          # noqa: BLE001 -- re-raised unless ordinary
                message = describe(e)
                if message is None or _traceback_wanted():
                    raise
                return fail(cmd, message)
            finally:
                _remove_temporaries()
        guarded.guarded_cmd = cmd
        return guarded
    return decorate


def flags_parser(cmd: str):
    """An absl `flags_parser` that reports a flag error as one `<cmd>: error:` line, exit 2
    (absl's own prints "FATAL Flags parsing error" and exits 1)."""
    def parse(argv):
        from absl import flags
        try:
            return flags.FLAGS(argv)
        except flags.Error as e:          # absl prefixes some messages with "ERROR::"
            fail(cmd, re.sub(r"^ERROR::\s*", "", str(e)))
            sys.exit(EXIT_ERROR)
    return parse


def run_app(main, cmd: str) -> None:
    """absl.app.run(main) with one-line flag errors (exit 2) and `main_guard(cmd)` around main.
    Flags must be defined before the call. Does not return."""
    from absl import app
    guarded = main if getattr(main, "guarded_cmd", None) else main_guard(cmd)(main)
    app.run(guarded, flags_parser=flags_parser(cmd))
