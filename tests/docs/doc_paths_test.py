#!/usr/bin/env python3
"""Fails when a document names a repository file or folder that does not exist.

Documents: README.md, docs/*.md and the src/<dir>/README.md files. A reference is
  - a path starting with a top-level folder of the repository (src/, tests/, docs/, scripts/,
    cmake/, db/, deploy/, fuzz/, bench/, web/, .ci/), e.g. `tests/ops/systemd_verify.sh`;
    placeholders (`<dir>`, `{name}`, `…`, `*`) are wildcards that must match something;
  - the target of a relative Markdown link, e.g. [api](api.md), resolved from the document.
Paths only produced by a build (web/node_modules/) are not checked, and a few files that the
README's "Adding a feature" example tells the reader to create are listed in EXAMPLES.

  doc_paths_test.py <repository root>      exit 0 if every reference exists, else 1 (listing them)
"""
import fnmatch
import re
import subprocess
import sys
from pathlib import Path

TOP = ("src", "tests", "docs", "scripts", "cmake", "db", "deploy", "fuzz", "bench", "web", ".ci")
# Files a document tells the reader to create (not meant to exist in the repository).
EXAMPLES = {
    "db/migrations/tenant/V002__notes.sql": "README, Adding a feature",
    "src/db/note_repository.hpp": "README, Adding a feature",
    "src/db/note_repository.hpp/.cpp": "README, Adding a feature",
    "src/api/notes.cpp": "README, Adding a feature",
    "tests/e2e/notes_test.cpp": "README, Adding a feature",
}
GENERATED = ("web/node_modules",)

PATH = re.compile(r"(?<![\w/.@~$-])((?:%s)/(?:[\w./*<>…+-]|\{[^}\s]*\})*)" % "|".join(re.escape(t) for t in TOP))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def references(text):
    """(line number, path as written) of every repository path in a Markdown text."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for m in PATH.finditer(line):
            path = m.group(1).rstrip(".,;")
            if path.rstrip("/") in TOP:
                continue  # a bare top-level folder name such as `web/` is fine
            found.append((number, path, False))
        for m in LINK.finditer(line):
            target = m.group(1).split("#", 1)[0]
            if target and not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("/"):
                found.append((number, target, True))
    return found


def exists(path, files, folders):
    """A path exists as a file or folder; `*` must match something; a name without an
    extension may be a program built from a source of that name (bench/argon2_rate); in a
    naming pattern (`<name>`, `{a,b}`, `…`) the folder before the first placeholder must exist."""
    path = path.rstrip("/")
    if path.startswith(GENERATED) or path in EXAMPLES:
        return True
    if path in files or path in folders:
        return True
    pattern = re.sub(r"<[^>]*>|\{[^}]*\}|…", "*", path)
    if "*" in pattern and any(fnmatch.fnmatchcase(p, pattern) for p in files | folders):
        return True
    if "*" in path:
        return False  # an explicit wildcard must match
    if "." not in Path(path).name and any(f.startswith(path + ".") for f in files):
        return True
    placeholder = re.search(r"<[^>]*>|\{[^}]*\}|…", path)
    if placeholder:
        folder = path[:placeholder.start()].rsplit("/", 1)[0]
        return folder in folders
    return False


def tracked(root):
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, check=True).stdout.decode()
        files = {f for f in out.split("\0") if f}
    except (OSError, subprocess.CalledProcessError):  # a source tree without git
        files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                 and not any(part in ("build", "node_modules", ".git") for part in p.relative_to(root).parts)}
    folders = {str(Path(f).parents[i]) for f in files for i in range(len(Path(f).parents) - 1)}
    return files, folders


def self_check():
    """The extractor must see what this test exists for."""
    sample = ("They check docs/security-and-fault-tests §3, (`tests/ops/metrics_promtool.sh`), "
              "see [api](api.md#roles); not http://localhost:8000/docs/x.js nor /docs or build/ci/src.")
    got = [p for _, p, _ in references(sample)]
    assert got == ["docs/security-and-fault-tests", "tests/ops/metrics_promtool.sh", "api.md"], got
    files, folders = {"docs/api.md", "src/db/pool.cpp"}, {"docs", "src", "src/db"}
    assert not exists("docs/security-and-fault-tests", files, folders)
    assert exists("src/*/pool.cpp", files, folders) and not exists("src/*/*_test.cpp", files, folders)
    assert exists("src/db/V<n>__name.sql", files, folders) and not exists("src/dbx/<n>.sql", files, folders)
    assert exists("src/<dir>/*.cpp", files, folders) and not exists("src/<dir>/*_test.cpp", files, folders)
    assert exists("src/db/pool", files, folders) and not exists("src/db/poo", files, folders)


def main(root):
    self_check()
    files, folders = tracked(root)
    docs = ["README.md"] + sorted(f for f in files if re.fullmatch(r"docs/[^/]+\.md|src/[^/]+/README\.md", f))
    missing = []
    for doc in docs:
        text = (root / doc).read_text(encoding="utf-8")
        for number, path, relative in references(text):
            target = str((Path(doc).parent / path)) if relative else path
            target = str(Path(target)) if relative else target  # normalise ./ and ../
            if relative and ".." in Path(target).parts:
                target = str((root / target).resolve().relative_to(root.resolve()))
            if not exists(target, files, folders):
                missing.append(f"{doc}:{number}: names {path}, which does not exist")
    for m in missing:
        print(m)
    print(f"{len(docs)} documents checked, {len(missing)} missing file(s)")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
