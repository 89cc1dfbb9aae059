"""Find heads by name: the `kerabert.heads` entry points, plus heads registered in code.

Entry points are listed from installed distributions' metadata, and a head's module is
imported only when the head is asked for (or when all heads are listed). A head whose
import fails, or whose object breaks the contract, is reported once (a warning naming
its distribution and the error) and skipped; every other head keeps working.

Precedence: a head registered in code (`register`) wins over entry points. Two
installed distributions declaring the same name is an error when that name is asked
for, naming both; block one of them to choose.

Controls, as pytest has for its plugins:

- `KERABERT_DISABLE_PLUGIN_AUTOLOAD=1`: load only kerabert's own heads and those
  registered in code.
- `KERABERT_BLOCK_PLUGINS="name,dist,..."`: never load these head names or any head
  of these distributions (names compare case-insensitively, `_` = `-`).

Blocking and disabling apply to entry points only: a head registered in code is
always used. See `docs/plugins.md`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib.metadata
import inspect
import os
import signal
import warnings

from kerabert.heads.base import (
    CONTRACT_VERSION,
    REQUIRED_MEMBERS,
    SUPPORTED_CONTRACT_VERSIONS,
    Head,
)

GROUP = "kerabert.heads"
CORE_DISTRIBUTION = "kerabert"
DISABLE_AUTOLOAD_ENV = "KERABERT_DISABLE_PLUGIN_AUTOLOAD"
BLOCK_ENV = "KERABERT_BLOCK_PLUGINS"


_registered = {}  # name -> head class, registered in code
_loaded = {}  # (distribution, version, name, target) -> head class
_failed = {}  # (distribution, version, name, target) -> BrokenHeadError
_reported = set()  # (distribution, name) already warned about


class HeadNotFoundError(KeyError):
    """An unknown head name; the message lists the available names."""

    def __str__(self):
        return self.args[0]


class HeadConflictError(RuntimeError):
    """Two installed distributions declare the same head name."""


class BrokenHeadError(RuntimeError):
    """A head that cannot be loaded or does not satisfy the contract."""


class HeadOptionError(ValueError):
    """An option the head does not take; the message lists the ones it does."""


@dataclasses.dataclass(frozen=True)
class HeadInfo:
    """What `available()` reports of one head."""

    name: str
    distribution: str
    version: str
    target: str
    fields: tuple = ()
    target_fields: tuple = ()
    summary: str = ""


def register(name, head_class, *, replace=False):
    """Register a head class in code (notebooks, tests) under `name`.

    Args:
        name: the name to select it by; it takes precedence over entry points.
        head_class: a `kerabert.heads.Head` subclass.
        replace: allow replacing a head registered in code under the same name.
    """
    check_contract(head_class, where=f"register({name!r})")
    if name in _registered and not replace and _registered[name] is not head_class:
        raise ValueError(f"a head named {name!r} is already registered; pass replace=True")
    _registered[name] = head_class
    return head_class


def unregister(name):
    """Remove a head registered in code."""
    _registered.pop(name, None)


def clear_cache():
    """Forget loaded and broken heads and the warnings given, so the next lookup reads
    the installed distributions again (after installing or removing one at runtime)."""
    importlib.invalidate_caches()
    _loaded.clear()
    _failed.clear()
    _reported.clear()


def _blocked():
    return {item.strip() for item in os.environ.get(BLOCK_ENV, "").split(",") if item.strip()}


def _autoload():
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in ("1", "true", "yes")


def _entry_points(with_excluded=False):
    """`[(entry_point, distribution_name, version)]` allowed by the environment.

    With `with_excluded`, also the ones the environment excludes, as
    `(entry_point, distribution_name, version, reason)`.
    """
    autoload = _autoload()
    blocked = {_normalize(item) for item in _blocked()}
    found, excluded = [], []
    seen = set()
    for dist in importlib.metadata.distributions():
        dist_name = dist.metadata["Name"] or "?"
        for ep in dist.entry_points:
            if ep.group != GROUP:
                continue
            key = (_normalize(dist_name), ep.name, ep.value)
            if key in seen:  # the same distribution seen twice on sys.path
                continue
            seen.add(key)
            if not autoload and _normalize(dist_name) != CORE_DISTRIBUTION:
                excluded.append((ep, dist_name, dist.version,
                                 f"plugin autoloading is disabled ({DISABLE_AUTOLOAD_ENV})"))
            elif _normalize(ep.name) in blocked or _normalize(dist_name) in blocked:
                excluded.append((ep, dist_name, dist.version, f"it is blocked ({BLOCK_ENV})"))
            else:
                found.append((ep, dist_name, dist.version))
    return (found, excluded) if with_excluded else found


def _normalize(dist_name):
    # Distribution names compare as PEP 503 does: case, "_" and "." do not matter.
    return dist_name.strip().lower().replace("_", "-").replace(".", "-")


def check_contract(obj, where):
    """Raise `BrokenHeadError` unless `obj` is a head class this kerabert can use."""
    if not inspect.isclass(obj):
        raise BrokenHeadError(f"{where}: {obj!r} is not a class")
    if not issubclass(obj, Head):
        raise BrokenHeadError(f"{where}: {obj.__name__} is not a subclass of kerabert.heads.Head")
    version = getattr(obj, "contract_version", None)
    if version not in SUPPORTED_CONTRACT_VERSIONS:
        from kerabert import __version__

        supported = " and ".join(str(v) for v in SUPPORTED_CONTRACT_VERSIONS)
        raise BrokenHeadError(
            f"{where}: {obj.__name__} was written for head contract version {version!r}, "
            f"but kerabert {__version__} implements head contract version {CONTRACT_VERSION} "
            f"(and loads heads written for {supported}); install a release of the head "
            f"written for contract {CONTRACT_VERSION}, or a kerabert that implements "
            f"contract {version!r}"
        )
    inherited = missing_members(obj)
    if inherited:
        raise BrokenHeadError(
            f"{where}: {obj.__name__} does not define {', '.join(inherited)} itself, which "
            f"head contract version {version} requires (the kerabert.heads.Head versions "
            "only raise NotImplementedError; see docs/writing-a-head.md)")


def missing_members(cls):
    """The required members (`REQUIRED_MEMBERS` of the class's contract version) that
    `cls` leaves to the base `Head`, in contract order."""
    version = getattr(cls, "contract_version", CONTRACT_VERSION)
    missing = []
    for member in REQUIRED_MEMBERS.get(version, REQUIRED_MEMBERS[CONTRACT_VERSION]):
        if member == "name":
            if not isinstance(getattr(cls, "name", None), str) or not cls.name:
                missing.append("name")
        elif inspect.getattr_static(cls, member, None) is inspect.getattr_static(Head, member):
            missing.append(member)
        elif not callable(getattr(cls, member, None)) and member != "fields":
            missing.append(member)
    return missing


def _load(ep, dist_name, version=""):
    key = (dist_name, version, ep.name, ep.value)
    if key in _loaded:
        return _loaded[key]
    if key in _failed:  # a broken head is imported once, not on every lookup
        raise _failed[key]
    where = f"head {ep.name!r} ({ep.value}) from distribution {dist_name}"
    if version:
        where += f" {version}"
    try:
        try:
            with _own_interrupts() as interrupted:
                obj = ep.load()
        except BaseException as e:  # a plugin's import may fail in any way, even exit
            if isinstance(e, KeyboardInterrupt) and interrupted():
                raise  # the user's Ctrl-C, not the plugin's
            if isinstance(e, GeneratorExit):
                raise
            raise BrokenHeadError(
                f"{where}: import failed: {type(e).__name__}: {e}".rstrip(": ")) from e
        check_contract(obj, where)
    except BrokenHeadError as e:
        _failed[key] = e
        raise
    _loaded[key] = obj
    return obj


@contextlib.contextmanager
def _own_interrupts():
    """Tell a real SIGINT (the user's Ctrl-C) from a `KeyboardInterrupt` a plugin raises
    at import: yields a function that says whether a SIGINT arrived.

    Whatever handler was installed (Python's default, a test runner's, an application's)
    still gets the signal: ours records it, then hands it on.
    """
    received = []
    try:
        previous = signal.getsignal(signal.SIGINT)
    except ValueError:
        previous = signal.default_int_handler

    def handler(signum, frame):
        received.append(signum)
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:  # SIG_DFL, or a handler not set from Python
            raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: signals go to the main thread anyway
        yield lambda: False
        return
    try:
        yield lambda: bool(received)
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def _report(key, error):
    if key not in _reported:
        _reported.add(key)
        warnings.warn(f"kerabert: skipping {error}", RuntimeWarning, stacklevel=3)


def available():
    """Every usable head, with the distribution that provides it and its fields.

    Broken heads are reported (once) and left out.

    Returns:
        A list of `HeadInfo`, sorted by name.
    """
    infos = {}
    for ep, dist_name, version in _entry_points():
        try:
            cls = _load(ep, dist_name, version)
        except BrokenHeadError as e:
            _report((dist_name, ep.name), e)
            continue
        infos.setdefault(ep.name, []).append(_info(ep.name, cls, dist_name, version, ep.value))
    for name, cls in _registered.items():
        infos[name] = [_info(name, cls, "(registered in code)", "", _target(cls))]
    return sorted((info for group in infos.values() for info in group), key=lambda i: i.name)


def names():
    """The names `get` accepts."""
    return sorted({info.name for info in available()})


def get(name):
    """The head class registered as `name`.

    Raises:
        HeadNotFoundError: no such head (the message lists the available names).
        HeadConflictError: two distributions declare `name`.
        BrokenHeadError: the head exists but cannot be loaded.
    """
    if name in _registered:
        return _registered[name]
    allowed, excluded = _entry_points(with_excluded=True)
    candidates = [(ep, d, v) for ep, d, v in allowed if ep.name == name]
    if not candidates:
        why = [f"distribution {d} {v} declares it but {reason}"
               for ep, d, v, reason in excluded if ep.name == name]
        known = names()
        close = difflib.get_close_matches(name, known, n=1)
        raise HeadNotFoundError(
            f"unknown head {name!r}" + (f" ({'; '.join(why)})" if why else "")
            + (f"; did you mean {close[0]!r}?" if close else "")
            + f"; available heads: {', '.join(known) or '(none)'}"
        )
    if len({d for _, d, _ in candidates}) > 1:
        owners = ", ".join(f"{d} {v} ({ep.value})" for ep, d, v in candidates)
        raise HeadConflictError(
            f"head {name!r} is declared by several distributions: {owners}. Uninstall one, "
            f"or block one with {BLOCK_ENV}=<distribution>."
        )
    ep, dist_name, version = candidates[0]
    return _load(ep, dist_name, version)


def create(name, **options):
    """An instance of the head `name` with `options`.

    Raises:
        HeadOptionError: an option the head's constructor does not take.
    """
    cls = get(name)
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        parameters = None
    if parameters is not None and not any(p.kind is p.VAR_KEYWORD for p in parameters):
        known = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                          p.KEYWORD_ONLY)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise HeadOptionError(
                f"head {name!r} has no option {unknown[0]!r} (its options: "
                f"{', '.join(known) or 'none'}; --head-option KEY=VALUE)")
    return cls(**options)


def _target(cls):
    return f"{cls.__module__}:{cls.__qualname__}"


def _info(name, cls, dist_name, version, target):
    fields, target_fields = (), ()
    try:
        head = cls()
        fields, target_fields = tuple(head.fields), tuple(head.target_fields)
    except Exception:  # a head that needs options to know its fields
        pass
    doc = (inspect.getdoc(cls) or "").strip().splitlines()
    return HeadInfo(
        name=name,
        distribution=dist_name,
        version=version,
        target=target,
        fields=fields,
        target_fields=target_fields,
        summary=doc[0] if doc else "",
    )
