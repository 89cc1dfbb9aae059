"""Where exports go: TF Serving's `<root>/<model-name>/<version>/`, written atomically.

TF Serving watches `<root>/<model-name>/` and serves the highest numeric version, so
that folder holds SavedModel versions only: another format goes to its own model folder
beside it, `<root>/<model-name>-<format>/<version>/` (e.g. `savedmodels/sst2-tflite/1/`),
so that a TFLite or ONNX export never becomes the "latest version" a server tries to
load. A new export gets the next integer and never overwrites an older one.

Each export is written into a hidden temporary sibling (`.<name>.partial-<host>~<pid>-...`,
which TF Serving ignores: not a number) and renamed into place only when complete: a
failed export leaves nothing, and a killed one (SIGKILL) leaves only that hidden
folder, which the next export into the same model folder removes. A version folder
gets the permissions of a folder made under the process's umask (0755 under umask
022), not `mkdtemp`'s 0700, so a server running as another user can read it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

DEFAULT_ROOT = "savedmodels"
_VERSION = re.compile(r"^[0-9]+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class DestinationExistsError(FileExistsError):
    """The export destination already exists; exports never overwrite."""


def check_name(name):
    """A model name usable as one directory (TF Serving's `model_name`)."""
    if not name or not _NAME.match(str(name)):
        raise ValueError(
            f"model name {name!r}: use letters, digits, '-', '_' or '.', starting with "
            "a letter or digit"
        )
    return str(name)


def model_dir(root, name, format="savedmodel"):
    """The model folder of `name`'s exports in `format`: `<root>/<name>` for SavedModels
    (TF Serving's), `<root>/<name>-<format>` for any other format."""
    name = check_name(name)
    return Path(root) / (name if format == "savedmodel" else f"{name}-{format}")


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _owner():
    # Host and pid of this export, in its temporary folder's name: a folder whose
    # process is gone on this host is a killed export's (another host's is left alone).
    host = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:40] or "host"
    return f"{host}~{os.getpid()}"


def _remove_stale_partials(parent):
    """Remove temporary folders of this host's exports whose process is gone (killed)."""
    host = _owner().split("~")[0]
    for folder in parent.glob(".*.partial-*"):
        match = re.search(r"\.partial-(.+)~([0-9]+)-", folder.name)
        if not match or match[1] != host or not folder.is_dir():
            continue
        try:
            os.kill(int(match[2]), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (PermissionError, OverflowError):
            pass  # alive (another user's), or not a pid


def versions(model_dir):
    """The numeric versions present under `model_dir`, sorted."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and _VERSION.match(p.name))


def next_version(model_dir):
    """One more than the highest version under `model_dir` (1 for a new model)."""
    existing = versions(model_dir)
    return existing[-1] + 1 if existing else 1


@contextlib.contextmanager
def atomic_directory(destination=None, *, model_dir=None):
    """Write a directory in a temporary sibling, then rename it into place.

    Give either `destination` (an exact directory that must not exist yet) or
    `model_dir` (the next version under it is chosen when the export is complete, so
    concurrent exports get distinct versions). The body receives the temporary
    directory; on success `final` holds the directory written. On any exception,
    including `KeyboardInterrupt`, the temporary directory is removed.

    Example:
    ```python
    with atomic_directory(model_dir="savedmodels/sst2") as target:
        write_files(target.temporary)
    print(target.final)  # savedmodels/sst2/3
    ```
    """
    if (destination is None) == (model_dir is None):
        raise ValueError("give exactly one of destination and model_dir")
    parent = Path(model_dir) if model_dir is not None else Path(destination).parent
    if destination is not None and Path(destination).exists():
        raise DestinationExistsError(
            f"{destination} already exists; exports never overwrite (choose another "
            "destination, or omit it to get the next version number)"
        )
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(parent)
    name = Path(destination).name if destination is not None else "version"
    temporary = Path(tempfile.mkdtemp(prefix=f".{name}.partial-{_owner()}-", dir=parent))
    os.chmod(temporary, 0o777 & ~_umask())  # mkdtemp makes it 0700
    target = _Target(temporary)
    try:
        yield target
        target.final = _commit(temporary, destination, model_dir)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


class _Target:
    def __init__(self, temporary):
        self.temporary = temporary
        self.final = None


def _commit(temporary, destination, model_dir):
    if destination is not None:
        final = Path(destination)
        if final.exists():  # appeared while we were writing
            raise DestinationExistsError(f"{final} appeared during the export; not overwritten")
        os.rename(temporary, final)
        return final
    for _ in range(100):
        final = Path(model_dir) / str(next_version(model_dir))
        try:
            # rename(2) would replace an empty directory: only rename onto nothing.
            if final.exists():
                continue
            os.rename(temporary, final)
            return final
        except OSError:
            continue  # another export took this version: take the next
    raise DestinationExistsError(f"could not claim a new version under {model_dir}")
