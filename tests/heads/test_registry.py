"""The head registry with real entry points: fake plugin distributions on sys.path.

Each test writes one or more distributions into a temporary folder, as pip would
install them (`<name>-<version>.dist-info/METADATA` + `entry_points.txt`, next to the
plugin's module), and puts that folder on `sys.path`; `importlib.metadata` then finds
them exactly as it finds installed plugins.
"""

from __future__ import annotations

import itertools
import sys
import textwrap
import warnings

import pytest

from kerabert.heads import (
    BrokenHeadError,
    Head,
    HeadConflictError,
    HeadInfo,
    HeadNotFoundError,
    available,
    create,
    get,
    names,
    register,
    registry,
    unregister,
)

_counter = itertools.count()

HEAD_SOURCE = '''
from kerabert.heads import Head


class {cls}(Head):
    """{summary}"""

    name = "{name}"
    contract_version = {contract}

    def __init__(self, size=1):
        self.size = size

    @property
    def fields(self):
        return ("text",)

    def preprocessor(self, tokenizer, sequence_length):
        raise AssertionError("not trained in these tests")

    build_outputs = loss = decode = serving_outputs = preprocessor

    def get_config(self):
        return {{"size": self.size}}
'''


class Complete(Head):
    """The methods a head must define, as stubs (these tests never train)."""

    name = "fake-complete"
    fields = ("text",)

    def preprocessor(self, tokenizer, sequence_length):
        raise AssertionError("not trained in these tests")

    build_outputs = loss = serving_outputs = preprocessor


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A factory of fake installed distributions in a folder on sys.path."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv(registry.DISABLE_AUTOLOAD_ENV, raising=False)
    monkeypatch.delenv(registry.BLOCK_ENV, raising=False)
    registry.clear_cache()
    modules = []

    def install(dist, version="1.0", heads=None, sources=None):
        """`heads`: {head name: "module:Class"}; `sources`: {module: source}."""
        info = folder / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        lines = ["[kerabert.heads]"] + [f"{n} = {target}" for n, target in (heads or {}).items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        for module, source in (sources or {}).items():
            (folder / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
            modules.append(module)
        registry.clear_cache()
        return info

    yield install
    for module in modules:
        sys.modules.pop(module, None)
    registry.clear_cache()


def plugin(site, dist, head_name, version="1.0", contract=1, summary="A fake head."):
    """Install a distribution with one working head; returns the module name."""
    module = f"fake_plugin_{next(_counter)}"
    cls = "FakeHead"
    site(dist, version, heads={head_name: f"{module}:{cls}"},
         sources={module: HEAD_SOURCE.format(cls=cls, name=head_name, contract=contract,
                                             summary=summary)})
    return module


def plugin_warnings(call, dist):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught if dist in str(w.message)]


def test_installed_plugin_is_listed_with_distribution_and_version(site):
    module = plugin(site, "fake-echo-plugin", "fake-echo", version="1.2.3",
                    summary="Echoes its input.")
    infos = {info.name: info for info in available()}
    assert infos["fake-echo"] == HeadInfo(
        name="fake-echo",
        distribution="fake-echo-plugin",
        version="1.2.3",
        target=f"{module}:FakeHead",
        fields=("text",),
        target_fields=(),
        summary="Echoes its input.",
    )
    assert infos["sentiment"].distribution == "kerabert"  # the core heads are untouched
    head = create("fake-echo", size=3)
    assert type(head).__module__ == module and head.get_config() == {"size": 3}
    assert "fake-echo" in names()


def test_cli_heads_lists_the_plugin(site, capsys):
    from kerabert.cli import main

    plugin(site, "fake-cli-plugin", "fake-cli", version="0.4.0")
    assert main(["heads"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["fake-cli", "fake-cli-plugin", "0.4.0", "text", "-"] in rows


def test_heads_are_imported_only_when_asked_for(site):
    first = plugin(site, "fake-lazy-a", "fake-lazy-a")
    second = plugin(site, "fake-lazy-b", "fake-lazy-b")
    get("fake-lazy-a")
    assert first in sys.modules
    assert second not in sys.modules


def test_broken_import_is_reported_once_and_skipped(site):
    site("fake-broken", "2.0", heads={"fake-broken": "fake_broken_module:Head"},
         sources={"fake_broken_module": "import not_a_module_that_exists_anywhere\n"})
    good = plugin(site, "fake-good", "fake-good")
    infos, first = plugin_warnings(available, "fake-broken")
    _, second = plugin_warnings(available, "fake-broken")
    assert len(first) == 1 and second == []  # reported once per process
    assert "head 'fake-broken'" in first[0] and "fake-broken 2.0" in first[0]
    assert "ModuleNotFoundError" in first[0] and "not_a_module_that_exists_anywhere" in first[0]
    listed = {info.name for info in infos}
    assert "fake-broken" not in listed
    assert {"fake-good", "sentiment"} <= listed  # every other head keeps working
    assert get("fake-good").__module__ == good
    with pytest.raises(BrokenHeadError, match="import failed: ModuleNotFoundError"):
        get("fake-broken")


def test_entry_point_that_is_not_a_head_class(site):
    site("fake-function", heads={"fake-function": "fake_function_module:make"},
         sources={"fake_function_module": "def make():\n    return None\n"})
    with pytest.raises(BrokenHeadError, match="is not a class"):
        get("fake-function")


def test_contract_version_mismatch_names_both_versions(site):
    plugin(site, "fake-future", "fake-future", version="3.0", contract=99)
    with pytest.raises(BrokenHeadError) as error:
        get("fake-future")
    message = str(error.value)
    assert "fake-future 3.0" in message
    assert "written for head contract version 99" in message
    assert f"implements head contract version {registry.CONTRACT_VERSION}" in message
    infos, reported = plugin_warnings(available, "fake-future")
    assert "fake-future" not in {info.name for info in infos}
    assert len(reported) == 1 and "contract version 99" in reported[0]


def test_unknown_name_lists_the_available_heads(site):
    plugin(site, "fake-listed", "fake-listed")
    with pytest.raises(HeadNotFoundError) as error:
        get("no-such-head")
    message = str(error.value)
    assert message.startswith("unknown head 'no-such-head'; available heads:")
    assert "fake-listed" in message and "sentiment" in message


def test_two_distributions_claiming_one_name_is_an_error_until_one_is_blocked(
    site, monkeypatch
):
    plugin(site, "fake-first", "fake-shared", version="1.0")
    second = plugin(site, "fake-second", "fake-shared", version="2.0")
    with pytest.raises(HeadConflictError) as error:
        get("fake-shared")
    message = str(error.value)
    assert "fake-first 1.0" in message and "fake-second 2.0" in message
    assert registry.BLOCK_ENV in message
    # Both are listed, so the user sees where the clash comes from.
    owners = {info.distribution for info in available() if info.name == "fake-shared"}
    assert owners == {"fake-first", "fake-second"}
    monkeypatch.setenv(registry.BLOCK_ENV, "fake-first")
    assert get("fake-shared").__module__ == second


def test_a_head_registered_in_code_takes_precedence(site):
    module = plugin(site, "fake-registered", "fake-registered")

    class InCode(Complete):
        name = "fake-registered"

        def get_config(self):
            return {}

    register("fake-registered", InCode)
    try:
        assert get("fake-registered") is InCode
        listed = [i for i in available() if i.name == "fake-registered"]
        assert [i.distribution for i in listed] == ["(registered in code)"]
        with pytest.raises(ValueError, match="already registered"):
            register("fake-registered", type("Other", (InCode,), {}))
    finally:
        unregister("fake-registered")
    assert get("fake-registered").__module__ == module  # the entry point again


def test_register_refuses_a_head_of_another_contract_version():
    class Old(Complete):
        name = "fake-old"
        contract_version = 0

    with pytest.raises(BrokenHeadError, match="written for head contract version 0"):
        register("fake-old", Old)
    assert "fake-old" not in registry._registered


def test_disable_plugin_autoload_keeps_core_and_code_heads(site, monkeypatch):
    plugin(site, "fake-auto", "fake-auto")
    monkeypatch.setenv(registry.DISABLE_AUTOLOAD_ENV, "1")
    listed = names()
    assert "fake-auto" not in listed and "sentiment" in listed
    with pytest.raises(HeadNotFoundError, match="autoloading is disabled"):
        get("fake-auto")

    class InCode(Complete):
        name = "fake-auto-in-code"

    register("fake-auto-in-code", InCode)
    try:
        assert get("fake-auto-in-code") is InCode
    finally:
        unregister("fake-auto-in-code")
    monkeypatch.setenv(registry.DISABLE_AUTOLOAD_ENV, "0")
    assert "fake-auto" in names()


@pytest.mark.parametrize("blocked", ["fake-blocked-head", "fake-blocked-dist",
                                     "Fake_Blocked_Dist", " other , fake-blocked-head "])
def test_block_plugins_by_head_or_distribution_name(site, monkeypatch, blocked):
    plugin(site, "fake-blocked-dist", "fake-blocked-head")
    kept = plugin(site, "fake-kept-dist", "fake-kept-head")
    monkeypatch.setenv(registry.BLOCK_ENV, blocked)
    listed = names()
    assert "fake-blocked-head" not in listed
    assert "fake-kept-head" in listed and "sentiment" in listed
    with pytest.raises(HeadNotFoundError, match=r"fake-blocked-dist 1.0 declares it but it is "
                                                r"blocked \(KERABERT_BLOCK_PLUGINS\)"):
        get("fake-blocked-head")
    assert get("fake-kept-head").__module__ == kept


def test_removing_a_distribution_removes_only_its_head(site):
    import shutil

    info = site("fake-gone", heads={"fake-gone": "fake_gone_module:GoneHead"},
                sources={"fake_gone_module": HEAD_SOURCE.format(
                    cls="GoneHead", name="fake-gone", contract=1, summary="Gone.")})
    before = {(i.name, i.distribution, i.version) for i in available()}
    assert ("fake-gone", "fake-gone", "1.0") in before
    shutil.rmtree(info)  # what `pip uninstall` does to the metadata
    registry.clear_cache()
    after = {(i.name, i.distribution, i.version) for i in available()}
    assert after == before - {("fake-gone", "fake-gone", "1.0")}
    with pytest.raises(HeadNotFoundError):
        get("fake-gone")


# -- containment (issue 15) --------------------------------------------------------------------
@pytest.mark.parametrize("escape", ["SystemExit(7)", "KeyboardInterrupt()"])
def test_a_plugin_that_exits_or_interrupts_at_import_is_contained(site, capsys, escape):
    from kerabert.cli import main

    site("fake-exits", heads={"fake-exits": "fake_exits_module:Head"},
         sources={"fake_exits_module": f"raise {escape}\n"})
    plugin(site, "fake-fine", "fake-fine")
    assert main(["heads"]) == 0  # not rc 7, not an interrupt
    captured = capsys.readouterr()
    assert "fake-fine" in captured.out and "fake-exits" not in captured.out
    assert "fake-exits" in captured.err and escape.split("(")[0] in captured.err
    with pytest.raises(BrokenHeadError, match="import failed"):
        get("fake-exits")


def test_a_real_ctrl_c_during_a_plugin_import_still_interrupts(site):
    import signal

    # Python's own handler, as in `kerabert` run from a shell (a test runner's worker may
    # have installed another: test_containment_holds_under_any_sigint_handler... covers those).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        site("fake-slow", heads={"fake-slow": "fake_slow_module:Head"},
             sources={"fake_slow_module": "import os, signal\n"
                                          "os.kill(os.getpid(), signal.SIGINT)\n"})
        with pytest.raises(KeyboardInterrupt):
            get("fake-slow")
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_head_that_overrides_nothing_is_refused_naming_the_missing_methods(site):
    site("fake-empty", heads={"fake-empty": "fake_empty_module:Empty"},
         sources={"fake_empty_module": "from kerabert.heads import Head\n\n"
                                       "class Empty(Head):\n    name = 'fake-empty'\n"})
    with pytest.raises(BrokenHeadError) as error:
        get("fake-empty")
    assert ("does not define fields, preprocessor, build_outputs, loss, serving_outputs "
            "itself, which head contract version 2 requires") in str(error.value)
    infos, reported = plugin_warnings(available, "fake-empty")  # reported and skipped
    assert "fake-empty" not in {i.name for i in infos} and "sentiment" in {i.name for i in infos}
    with pytest.raises(BrokenHeadError, match="does not define fields"):
        register("fake-empty-in-code", type("Empty", (Head,), {"name": "x"}))
    # No name: the registry could not tell it from any other head.
    nameless = type("Nameless", (Complete,), {"name": ""})
    with pytest.raises(BrokenHeadError, match=r"does not define name itself"):
        register("fake-nameless", nameless)
    # Only one member missing: exactly that one is named.
    no_loss = type("NoLoss", (Complete,), {"loss": Head.loss})
    with pytest.raises(BrokenHeadError, match=r"does not define loss itself"):
        register("fake-no-loss", no_loss)


def test_a_contract_1_head_is_checked_against_the_version_1_members(site):
    """Version 1 required a hand-written decode and no serving_outputs."""
    site("fake-empty-v1", heads={"fake-empty-v1": "fake_empty_v1_module:Empty"},
         sources={"fake_empty_v1_module": "from kerabert.heads import Head\n\n"
                                          "class Empty(Head):\n    name = 'fake-empty-v1'\n"
                                          "    contract_version = 1\n"})
    with pytest.raises(BrokenHeadError) as error:
        get("fake-empty-v1")
    assert ("does not define fields, preprocessor, build_outputs, loss, decode itself, "
            "which head contract version 1 requires") in str(error.value)
    plugin(site, "fake-v1-ok", "fake-v1-ok", contract=1)  # serving_outputs: optional in v1
    assert get("fake-v1-ok").contract_version == 1


def test_heads_json_prints_warnings_on_stderr_only(site, capsys):
    import json

    from kerabert.cli import main

    site("fake-broken-json", heads={"fake-broken-json": "nowhere_module_x:Head"})
    plugin(site, "fake-json-ok", "fake-json-ok")
    assert main(["heads", "--json"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]  # every line is JSON
    assert "fake-json-ok" in {row["name"] for row in rows}
    assert "fake-broken-json" in captured.err


def test_an_unknown_head_option_names_the_options(capsys):
    from kerabert.cli import main
    from kerabert.heads.registry import HeadOptionError

    with pytest.raises(HeadOptionError, match="has no option 'nosuch'.*labels"):
        create("sentiment", nosuch=1)
    code = main(["train", "--head", "sentiment", "--head-option", "nosuch=1",
                 "--train", "never-read.tsv", "--output", "never-written"])
    err = capsys.readouterr().err
    assert code == 2 and "has no option 'nosuch'" in err and "Traceback" not in err


@pytest.mark.parametrize("installed", ["ignore", "custom"])
def test_containment_holds_under_any_sigint_handler_and_hands_real_signals_on(
        site, capsys, installed):
    import signal

    seen = []
    handler = signal.SIG_IGN if installed == "ignore" else (lambda *_: seen.append("user"))
    previous = signal.signal(signal.SIGINT, handler)
    try:
        site("fake-raises", heads={"fake-raises": "fake_raises_module:Head"},
             sources={"fake_raises_module": "raise KeyboardInterrupt\n"})
        with pytest.raises(BrokenHeadError, match="KeyboardInterrupt"):
            get("fake-raises")
        site("fake-signals", heads={"fake-signals": "fake_signals_module:Head"},
             sources={"fake_signals_module": "import os, signal\n"
                                             "os.kill(os.getpid(), signal.SIGINT)\n"})
        with pytest.raises(BrokenHeadError):  # the module has no Head: import fails after
            get("fake-signals")
        assert seen == ([] if installed == "ignore" else ["user"])
        assert signal.getsignal(signal.SIGINT) is handler  # put back as it was
    finally:
        signal.signal(signal.SIGINT, previous)
