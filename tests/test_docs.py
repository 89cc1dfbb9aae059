"""Every ```python and ```bash block of README.md and docs/*.md runs as written.

The blocks of one file run in order in one scratch folder (a sibling `shared/data` links
to the real data, so `../shared/data/...` resolves as it does beside a clone); Python
blocks of a file share one namespace, bash blocks run with `kerabert` on the PATH.

An HTML comment on the lines just above a block tells this test how to run it:

- `<!-- doctest: skip: REASON -->`: not run, reported as skipped with the reason;
- `<!-- doctest: needs-data -->`: skipped when `../shared/data` is absent;
- `<!-- doctest: small: OLD => NEW -->`: with `KERABERT_DOC_TEST_SMALL` (on unless set
  to `0`), `OLD` is replaced by `NEW` first, so that training commands stay quick;
- `<!-- doctest: file: PATH -->`: the block is a file to write at PATH (a module a later
  block imports), not a command.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA

# Exports, document runs and multi-process tests: minutes on 2 cores.
pytestmark = pytest.mark.slow

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SMALL = os.environ.get("KERABERT_DOC_TEST_SMALL", "1") != "0"
FENCE = re.compile(r"^```(python|bash)\n(.*?)^```", re.S | re.M)
DIRECTIVE = re.compile(r"<!-- doctest: (skip|needs-data|small|file)(?::\s*(.*?))?\s*-->")


@dataclass
class Block:
    language: str
    code: str
    line: int
    skip: str | None = None
    needs_data: bool = False
    file: str | None = None
    small: list[tuple[str, str]] = field(default_factory=list)


def blocks(path: Path) -> list[Block]:
    """The code blocks of a markdown file with the directives just above each."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        block = Block(match.group(1), match.group(2), line)
        above = text[:match.start()].rstrip("\n").split("\n")
        while above and re.fullmatch(r"<!--.*-->", above[-1].strip()):
            directive = DIRECTIVE.fullmatch(above.pop().strip())
            if directive is None:
                continue  # another tool's marker (e.g. example-head:start)
            kind, value = directive.groups()
            if kind == "skip":
                block.skip = value or "marked skip"
            elif kind == "needs-data":
                block.needs_data = True
            elif kind == "file":
                block.file = value
            else:
                old, sep, new = (value or "").partition(" => ")
                assert sep, f"{path.name}:{line}: `small: OLD => NEW` expected"
                block.small.append((old, new))
        found.append(block)
    return found


def _workspace(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A scratch folder beside a `shared/data` link, and an environment whose `kerabert`
    and `python` are this interpreter with this checkout on the path."""
    work = tmp_path / "clone"
    work.mkdir()
    if SHARED_DATA.is_dir():
        (tmp_path / "shared").mkdir()
        (tmp_path / "shared" / "data").symlink_to(SHARED_DATA)
    for name in ("kerabert", "docs", "plugins"):
        (work / name).symlink_to(REPO / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, command in (("kerabert", f'"{sys.executable}" -m kerabert'),
                          ("python", f'"{sys.executable}"')):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        script.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(work), str(REPO)])}
    return work, env


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_document_code_runs(document, tmp_path, monkeypatch):
    found = blocks(document)
    if not found:
        pytest.skip(f"{document.name} has no python or bash blocks")
    work, env = _workspace(tmp_path)
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(work))
    namespace: dict = {"__name__": "__doc_test__"}
    skipped = []
    for block in found:
        where = f"{document.name}:{block.line}"
        if block.skip:
            skipped.append(f"{where}: {block.skip}")
            continue
        if block.needs_data and not SHARED_DATA.is_dir():
            skipped.append(f"{where}: needs the real data at {SHARED_DATA}")
            continue
        code = block.code
        for old, new in block.small if SMALL else ():
            assert old in code, f"{where}: `small` text {old!r} is not in the block"
            code = code.replace(old, new)
        if block.file:
            target = work / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code, encoding="utf-8")
        elif block.language == "python":
            exec(compile(code, where, "exec"), namespace)  # noqa: S102
        else:
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=work,
                                    env=env, capture_output=True, text=True, timeout=900)
            assert result.returncode == 0, (
                f"{where} failed ({result.returncode}):\n{code}\n--- stdout\n"
                f"{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")
    if skipped:
        print("\n".join(["skipped blocks:", *skipped]))
    if len(skipped) == len(found):
        pytest.skip("; ".join(skipped))


def test_every_skip_has_a_reason():
    for document in DOCUMENTS:
        for block in blocks(document):
            assert block.skip is None or len(block.skip) > 10, (
                f"{document.name}:{block.line}: say why the block is skipped")
