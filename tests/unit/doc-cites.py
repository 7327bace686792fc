#!/usr/bin/python3
"""doc-cites.py: checks that comments and docs cite the repository's own documents (doc/*.md,
README.md, the man pages), never documents that are not in the repository. The build makes
it the unit test tests/unit/test-doc-cites.

Usage: doc-cites.py [ROOT]

Reads every file of ROOT ($OFFLOAD_SRC, else the tree this script is in): in a git work tree
the files git lists (tracked, and untracked ones that are not ignored), otherwise every file
under src, tests, conf, debian, man, scripts, sql, doc, m4 and .ci plus README.md,
Makefile.am and configure.ac, leaving out what a build generates (Makefile.in, objects,
debian/offload, ...). Binary files and this script are skipped. An offence is
  - the word SPEC, DESIGN or STYLE in capitals (the project's design notes, which are not
    in the repository), or REFERENCES followed by "§", ".md" or punctuation (SQL's
    "REFERENCES table" is fine); a "§" right after one of them is part of that offence;
  - MACHINE-NOTES, or a path under /work/shared;
  - a section "§N" not preceded by the public document it belongs to ("RFC 3464 §2.3",
    "HTML5 §13.2.5.80", or an earlier section of the same list: "RFC 3834 §5.1 and §5.2");
  - a cite of the form  FILE.md, "Heading"  (doc/api.md, "Lifecycle") whose file is not in
    the repository, or has no heading that starts with that text.
Each offence is one line "not ok - FILE:LINE: what"; each clean file "ok - FILE".

Before the tree, the check checks itself on a small tree it writes to a temporary directory
(every offence must be found at its line, and nothing else).
The last line is "N passed, N failed"; the exit status is 1 when anything failed.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

SELF = "tests/unit/doc-cites.py"

# Without git: where to look, and what a build or a package build leaves there.
WALK_DIRS = ("src", "tests", "conf", "debian", "man", "scripts", "sql", "doc", "m4", ".ci")
WALK_FILES = ("README.md", "Makefile.am", "configure.ac")
GENERATED_DIRS = {".deps", ".libs", "__pycache__", "autom4te.cache", ".git"}
GENERATED_PATHS = ("debian/offload", "debian/tmp", "debian/.debhelper", "debian/debhelper-build-stamp",
                   "debian/files", "debian/offload.substvars")
GENERATED_NAMES = re.compile(r"^(Makefile|Makefile\.in|.*\.(o|a|so|trs|log|pyc|dirstamp))$")

OUTSIDE_WORD = re.compile(r"\b(SPEC|DESIGN|STYLE)\b")
OUTSIDE_REFERENCES = re.compile(r"\bREFERENCES(?=\s*[§.',;:)/]|\s*$)", re.M)
MACHINE_NOTES = re.compile(r"\bMACHINE-NOTES\b|/work/shared\b")
SECTION = re.compile(r"§\s?\d")
# What may stand right before a "§": a public document, or an earlier section of the same one.
SECTION_OWNER = re.compile(
    r"(\bRFC[ -]?\d+|\bHTML5?|\bISO[ /-]?\d+(-\d+)?|\bPOSIX(\.1)?|\bIEEE \d+(\.\d+)?)\s*$"
    r"|§[\w.]+\s*(,|and|or|to|–|-)\s*$")
OUTSIDE_BEFORE = re.compile(r"\b(SPEC|DESIGN|STYLE|REFERENCES)(\.md)?\s*$")
CITE = re.compile(r'((?:[\w.-]+/)*[\w.-]+\.md), "([^"\n]+)"')
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def is_generated(rel):
    parts = rel.split("/")
    if any(p in GENERATED_DIRS for p in parts[:-1]):
        return True
    if any(rel == g or rel.startswith(g + "/") for g in GENERATED_PATHS):
        return True
    return bool(GENERATED_NAMES.match(parts[-1]))


def git_files(root):
    """The files git lists in root (tracked, and untracked but not ignored), or None when
    root is not a git work tree or git is missing."""
    if not os.path.exists(os.path.join(root, ".git")) or not shutil.which("git"):
        return None
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    files = sorted({f for f in out.decode("utf-8", "replace").split("\0") if f})
    return [f for f in files if os.path.isfile(os.path.join(root, f)) and not is_generated(f)]


def walked_files(root):
    out = []
    for top in WALK_DIRS:
        for d, dirs, files in os.walk(os.path.join(root, top)):
            dirs[:] = sorted(x for x in dirs if x not in GENERATED_DIRS)
            for f in sorted(files):
                out.append(os.path.relpath(os.path.join(d, f), root))
    out += [f for f in WALK_FILES if os.path.isfile(os.path.join(root, f))]
    return sorted(f.replace(os.sep, "/") for f in out if not is_generated(f.replace(os.sep, "/")))


def tree_files(root):
    files = git_files(root)
    return walked_files(root) if files is None else files


def read_text(path):
    """The file's text, or None for a binary file."""
    with open(path, "rb") as f:
        data = f.read()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", "replace")


class Headings:
    """The headings of the repository's markdown files, read once each."""

    def __init__(self, root):
        self.root = root
        self.cache = {}

    def find(self, rel_from, cited):
        """(path of the cited file relative to root, or None; its headings)."""
        for base in ("", os.path.dirname(rel_from)):
            rel = os.path.normpath(os.path.join(base, cited)).replace(os.sep, "/")
            if rel.startswith("../"):
                continue
            if rel not in self.cache:
                path = os.path.join(self.root, rel)
                text = read_text(path) if os.path.isfile(path) else None
                self.cache[rel] = None if text is None else HEADING.findall(text)
            if self.cache[rel] is not None:
                return rel, self.cache[rel]
        return None, []


def scan_text(rel, text, headings):
    """The offences of one file's text as (line, message), in line order."""
    offences = []
    for n, line in enumerate(text.split("\n"), 1):
        for m in OUTSIDE_WORD.finditer(line):
            offences.append((n, 'cites %s, a document outside the repository (cite doc/api.md,'
                             ' doc/operator-guide.md, a man page, ...)' % m.group(1)))
        for m in OUTSIDE_REFERENCES.finditer(line):
            offences.append((n, "cites REFERENCES, a document outside the repository (state"
                             " the fact and its public source in a doc)"))
        for m in MACHINE_NOTES.finditer(line):
            offences.append((n, "cites %s, which is not in the repository" % m.group(0)))
        for m in SECTION.finditer(line):
            before = line[:m.start()]
            if OUTSIDE_BEFORE.search(before):
                continue  # "SPEC §4.7": reported once, above
            if not SECTION_OWNER.search(before):
                offences.append((n, '"%s" names no document ("RFC NNNN §N"; for this'
                                 ' repository\'s docs: doc/api.md, "Heading")'
                                 % line[m.start():m.start() + 8].strip()))
        for m in CITE.finditer(line):
            cited, title = m.group(1), m.group(2)
            found, heads = headings.find(rel, cited)
            if found is None:
                offences.append((n, "cites %s, which is not in the repository" % cited))
            elif not any(h.startswith(title) for h in heads):
                offences.append((n, 'cites %s, "%s": no heading of %s starts with that'
                                 % (cited, title, found)))
    return sorted(offences, key=lambda o: o[0])


def check_tree(root, out):
    """Scans root. Returns (passed, failed) and writes the report lines to out."""
    passed = failed = 0
    headings = Headings(root)
    for rel in tree_files(root):
        if rel == SELF:
            continue
        text = read_text(os.path.join(root, rel))
        if text is None:
            continue
        offences = scan_text(rel, text, headings)
        if not offences:
            out.write("ok - %s\n" % rel)
            passed += 1
        for line, what in offences:
            out.write("not ok - %s:%d: %s\n" % (rel, line, what))
            failed += 1
    return passed, failed


# ------------------------------------------------------------------------ self-test

SELF_TEST_FILES = {
    "doc/api.md": "# API\n\n## Lifecycle\n\ntext\n\n### GET /cases/{caseId} — read a case\n",
    "doc/guide.md": "# Guide\n\nSee [the API](api.md), \"Lifecycle\" and api.md, \"Lifecycle\".\n",
    "src/ok.c": (
        '/* ok.c: cites (doc/api.md, "Lifecycle") and (doc/api.md, "GET /cases/{caseId}"). */\n'
        "/* RFC 3834 §5.1 and §5.2; RFC 3464 §2.3.3; HTML5 §13.2.5.80. */\n"
        "#define SPEC_VERSION 2 /* a macro, not a cite */\n"
        "/* SPECIFIC, DESIGNS and STYLES are other words; so is 'spec'. */\n"
        'static const char gsm7[] = "@£$¥§¿ÄÖÑÜ"; /* a section sign as data */\n'
    ),
    "sql/001_x.sql": "  CONSTRAINT f FOREIGN KEY (c) REFERENCES clients (id)\n",
    "src/bad.c": (
        "/* bad.c */\n"                                            # 1
        "/* SPEC §4.7: a crash window */\n"                       # 2: SPEC, once
        "/* after the lease (SPEC\n"                              # 3: SPEC
        " * §4.7's window) */\n"                                  # 4: a bare section
        "/* Replies (DESIGN: Mail). */\n"                         # 5: DESIGN
        "/* Strict mode (REFERENCES §8). */\n"                    # 6: REFERENCES
        "/* (doc/api.md, \"No such heading\") */\n"               # 7: heading
        "/* (doc/missing.md, \"Lifecycle\") */\n"                 # 8: file
        "/* the 2-core machine of MACHINE-NOTES.md */\n"          # 9: MACHINE-NOTES
        "/* see /work/shared/DESIGN.md */\n"                      # 10: DESIGN and /work/shared
        "/* as STYLE says */\n"                                   # 11: STYLE
        "/* the list of REFERENCES.md */\n"                       # 12: REFERENCES
    ),
    "README.md": "# Readme\n\nThe contract is in SPEC.md.\n",    # 3: SPEC
    SELF: "SPEC §1 REFERENCES §2 (this script is not scanned)\n",
}
SELF_TEST_BINARY = ("src/blob.bin", b"\0\1SPEC \xc2\xa71\n")

SELF_TEST_EXPECTED = [
    ("README.md", 3),
    ("src/bad.c", 2), ("src/bad.c", 3), ("src/bad.c", 4), ("src/bad.c", 5), ("src/bad.c", 6),
    ("src/bad.c", 7), ("src/bad.c", 8), ("src/bad.c", 9), ("src/bad.c", 10), ("src/bad.c", 10),
    ("src/bad.c", 11), ("src/bad.c", 12),
]


class Lines:
    def __init__(self):
        self.lines = []

    def write(self, s):
        self.lines.extend(s.splitlines())


def offences_of(rep):
    found = []
    for ln in rep.lines:
        m = re.match(r"not ok - ([^:]+):(\d+): ", ln)
        if m:
            found.append((m.group(1), int(m.group(2))))
    return sorted(found)


def self_test(out):
    """Runs the check on a tree with known offences. Returns (passed, failed)."""
    passed = failed = 0

    def check(ok, name):
        nonlocal passed, failed
        out.write("%s - self-test: %s\n" % ("ok" if ok else "not ok", name))
        if ok:
            passed += 1
        else:
            failed += 1

    with tempfile.TemporaryDirectory(prefix="doc-cites.") as tmp:
        for rel, text in SELF_TEST_FILES.items():
            os.makedirs(os.path.join(tmp, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(tmp, rel), "w", encoding="utf-8") as f:
                f.write(text)
        with open(os.path.join(tmp, SELF_TEST_BINARY[0]), "wb") as f:
            f.write(SELF_TEST_BINARY[1])
        # What a build leaves behind is not the repository's text.
        os.makedirs(os.path.join(tmp, "debian", "offload"))
        for rel in ("Makefile.in", "src/Makefile", "debian/offload/README.md"):
            with open(os.path.join(tmp, rel), "w", encoding="utf-8") as f:
                f.write("# SPEC §6\n")

        rep = Lines()
        p, f = check_tree(tmp, rep)
        found = offences_of(rep)
        want = sorted(SELF_TEST_EXPECTED)
        missed = [x for x in want if x not in found]
        extra = [x for x in found if x not in want]
        check(not missed and found.count(("src/bad.c", 10)) == 2,
              "finds every offence at its line (missed: %s)" %
              (", ".join("%s:%d" % x for x in missed) or "none"))
        check(not extra, "reports nothing else: RFC sections, SQL REFERENCES, SPEC_VERSION,"
              " a § in data, true cites, binary and generated files, this script (extra: %s)" %
              (", ".join("%s:%d" % x for x in extra) or "none"))
        check(f == len(want) and p == 4,
              "counts: doc/api.md, doc/guide.md, src/ok.c and sql/001_x.sql are clean"
              " (%d clean, %d offences)" % (p, f))
        check(any(ln.startswith('not ok - src/bad.c:7: cites doc/api.md, "No such heading"')
                  for ln in rep.lines), 'a heading that is not there is named in the report')

        # In a git work tree: the files git lists, ignored ones left out.
        if shutil.which("git"):
            with open(os.path.join(tmp, ".gitignore"), "w", encoding="utf-8") as f:
                f.write("ignored.txt\nMakefile.in\nMakefile\n")
            with open(os.path.join(tmp, "ignored.txt"), "w", encoding="utf-8") as f:
                f.write("SPEC §1\n")
            with open(os.path.join(tmp, "NEW.md"), "w", encoding="utf-8") as f:
                f.write("A new file, not added yet, citing SPEC §1.\n")
            env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=tmp)
            subprocess.run(["git", "-C", tmp, "init", "-q"], check=True, env=env)
            subprocess.run(["git", "-C", tmp, "add", "doc", "src", "sql", "README.md"],
                           check=True, env=env)
            rep = Lines()
            p, f = check_tree(tmp, rep)
            found = offences_of(rep)
            check(found == sorted(want + [("NEW.md", 1)]) and
                  not any("ignored.txt" in ln or "debian/offload" in ln for ln in rep.lines),
                  "in a git work tree: tracked and new files, not ignored ones (%d offences)" % f)
        else:
            out.write("ok - self-test: git mode # SKIP git is not installed\n")
            passed += 1
    return passed, failed


def main(argv):
    args = []
    for a in argv[1:]:
        if a in ("-h", "--help"):
            sys.stdout.write(__doc__)
            return 0
        args.append(a)
    if len(args) > 1:
        sys.stderr.write("usage: doc-cites.py [ROOT]\n")
        return 2
    root = args[0] if args else os.environ.get("OFFLOAD_SRC") or os.path.join(
        os.path.dirname(os.path.realpath(__file__)), "..", "..")
    root = os.path.realpath(root)
    if not os.path.isdir(os.path.join(root, "src")):
        sys.stderr.write("doc-cites: no src/ in %s\n" % root)
        print("0 passed, 1 failed")
        return 1

    p1, f1 = self_test(sys.stdout)
    print("# scanning %s" % root)
    p2, f2 = check_tree(root, sys.stdout)
    passed, failed = p1 + p2, f1 + f2
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
