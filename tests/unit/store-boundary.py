#!/usr/bin/python3
"""store-boundary.py: checks that no SQL lives outside src/store/ (one store layer: the
layer). The build makes it the unit test tests/unit/test-store-boundary.

Usage: store-boundary.py [--strict] [ROOT]

Scans every .c and .h file under ROOT/src (ROOT: $OFFLOAD_SRC, else the tree this script is
in) except ROOT/src/store/, after removing comments, for
  - a C string literal (adjacent literals and the macros between them read as one) that
    starts with an SQL statement: SELECT, INSERT, UPDATE, DELETE, REPLACE, START
    TRANSACTION, COMMIT, ROLLBACK, LOCK, CALL, SET, SHOW, CREATE, ALTER, DROP, TRUNCATE,
    EXPLAIN, WITH;
  - a call of the connection layer's statement functions (store/db.h): db_query,
    db_exec_text, db_res_*, db_begin, db_commit, db_rollback, db_insert_id,
    db_affected_rows — and any use of the MariaDB client library (mysql_*, <mysql.h>);
  - an #include "store/db.h" in a file that neither opens a connection (db_library_init,
    db_open, db_new, db_close, ...) nor reads a handle's last error for its log (db_error,
    db_errno, db_error_is_connection, db_error_is_unavailable): a caller that only passes a struct db * around
    needs no more than the declaration "struct db;".
Each offence is one line "not ok - FILE:LINE: what"; each clean file "ok - FILE".

Paths listed in ROOT/tests/unit/store-boundary.pending (one a line, a file or a directory
relative to ROOT; '#' starts a comment) are still being moved into the store: their
offences are reported with "# TODO" (one line per file: the first offence and how many
more) and not counted, and an entry without any offence left is a failure (remove it).
--strict ignores that list and lists every offence: what the whole tree must pass.

Before the tree, the check checks itself on a small tree it writes to a temporary directory
(an offence of each kind must be found at its line, and nothing else).
The last line is "N passed, N failed"; the exit status is 1 when anything failed.
"""
import os
import re
import sys
import tempfile

# Statement functions of store/db.h that only code inside src/store/ may call.
STATEMENT_FUNCS = {
    "db_query", "db_exec_text", "db_begin", "db_commit", "db_rollback", "db_insert_id",
    "db_affected_rows",
}
STATEMENT_PREFIXES = ("db_res_",)
STATEMENT_TYPES = {"db_res", "db_arg"}  # struct db_res, struct db_arg
# Connection functions: a program's main opens and closes connections, so it may include
# store/db.h for them.
CONNECTION_FUNCS = {
    "db_library_init", "db_library_end", "db_open", "db_new", "db_close", "db_ping",
    "db_connections_made",
}
# The last error of a handle, for a caller's log line or its choice of 500 or 503: not SQL.
ERROR_FUNCS = {"db_error", "db_errno", "db_error_is_connection", "db_error_is_unavailable"}

# A literal is SQL when its text (leading blanks removed) matches one of these. The bare
# keywords that are also English or HTTP words (SELECT, SET, SHOW, CALL, DELETE, UPDATE)
# count only in capitals or in their SQL shape, so that "DELETE" (a method) or "set the key"
# (a message) are not taken for statements.
SQL_STARTS = [
    re.compile(p) for p in (
        r"SELECT\s+\S",
        r"(?i:select)\s+.*\s(?i:from)\s+\w",
        r"(?i:insert)\s+((?i:ignore)\s+)?(?i:into)\s",
        r"(?i:replace)\s+(?i:into)\s",
        r"UPDATE\s+`?\w",
        r"(?i:update)\s+`?\w+`?\s+(\w+\s+)?(?i:set)\s",
        r"(?i:delete)\s+(\w+\s+)?(?i:from)\s",
        r"(?i:start)\s+(?i:transaction)\b",
        r"(?i:begin)\s*;?\s*$",
        r"(COMMIT|ROLLBACK)\b",
        r"(?i:commit|rollback)\s*;?\s*$",
        r"(?i:un)?(?i:lock)\s+(?i:tables?)\s",
        r"LOCK\s+\w",
        r"CALL\s+\w+\s*\(",
        r"SET\s+(@|\w+\s*=|\w+\s+\w)",
        r"(?i:set)\s+(@|(?i:names|session|global|transaction|autocommit)\b)",
        r"SHOW\s+\w",
        r"(?i:show)\s+(?i:tables|variables|status|global|session|create|columns|index|"
        r"processlist|databases|warnings|errors|engine|full|grants)\b",
        r"(?i:create)\s+(?i:table|index|unique|database|schema|view|procedure|function|"
        r"trigger|temporary|or\s+replace|event|user|sequence)\b",
        r"(?i:alter)\s+(?i:table|database|schema|view|user|event|sequence)\b",
        r"(?i:drop)\s+(?i:table|index|database|schema|view|procedure|function|trigger|"
        r"temporary|event|user|sequence)\b",
        r"(?i:truncate)\s+((?i:table)\s+)?`?\w",
        r"EXPLAIN\s+\w",
        r"(?i:with)\s+((?i:recursive)\s+)?\w+\s+(?i:as)\s*\(",
    )
]

TOKEN = re.compile(
    r"""
    (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>(?:u8|[uUL])?"(?:\\.|\\\n|[^"\\\n])*")
  | (?P<char>(?:u8|[uUL])?'(?:\\.|[^'\\\n])*')
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<newline>\n)
  | (?P<space>[ \t\r\f\v]+|\\\n)
  | (?P<other>.)
    """,
    re.S | re.X,
)

INCLUDE_DB = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"store/db\.h"', re.M)
INCLUDE_MYSQL = re.compile(r"^[ \t]*#[ \t]*include[ \t]*[<\"](?:mysql/)?mysql\.h[>\"]", re.M)


def literal_text(tok):
    """The characters of a string literal token, without its prefix and quotes (escapes are
    left as written: only the start of the text matters)."""
    return tok[tok.index('"') + 1:-1]


def scan_text(text):
    """Returns the offences of one C file's text as (line, message), in line order."""
    offences = []
    line = 1
    run = None  # [start line, pieces] of adjacent literals (and macros between them)
    uses = set()
    include_line = None
    prev_ident = None

    def close_run():
        nonlocal run
        if run is None:
            return
        start, pieces = run
        run = None
        joined = "".join(pieces).lstrip()
        # Escaped newlines and tabs in a literal read as blanks.
        joined = re.sub(r"\\[ntr]", " ", joined)
        for pat in SQL_STARTS:
            if pat.match(joined):
                excerpt = re.sub(r"\s+", " ", joined)[:60]
                offences.append((start, 'SQL statement in a string literal: "%s"' % excerpt))
                break

    for m in TOKEN.finditer(text):
        kind = m.lastgroup
        tok = m.group()
        if kind == "string":
            if run is None:
                run = [line, []]
            run[1].append(literal_text(tok))
        elif kind == "ident" and run is not None and tok.isupper():
            # A macro between two literals ("SELECT " COLUMNS " FROM t") joins them.
            run[1].append(tok)
        elif kind in ("space", "newline", "comment"):
            pass
        else:
            close_run()
        if kind == "ident":
            if tok in STATEMENT_FUNCS or tok.startswith(STATEMENT_PREFIXES):
                offences.append((line, "%s outside src/store/" % tok))
            elif tok in STATEMENT_TYPES and prev_ident == "struct":
                offences.append((line, "struct %s outside src/store/" % tok))
            elif tok.startswith("mysql_") or tok.startswith("MYSQL"):
                offences.append((line, "MariaDB client library (%s) outside src/store/" % tok))
            elif tok in CONNECTION_FUNCS or tok in ERROR_FUNCS:
                uses.add(tok)
        if kind == "ident":
            prev_ident = tok
        elif kind not in ("space", "newline", "comment"):
            prev_ident = None
        line += tok.count("\n")
    close_run()

    for m in INCLUDE_DB.finditer(text):
        include_line = text.count("\n", 0, m.start()) + 1
    if include_line is not None and not uses:
        offences.append((include_line, 'includes "store/db.h" but opens no connection'
                         ' and reads no error (declare "struct db;" instead)'))
    for m in INCLUDE_MYSQL.finditer(text):
        offences.append((text.count("\n", 0, m.start()) + 1,
                         "includes the MariaDB client header outside src/store/"))
    return sorted(offences, key=lambda o: o[0])



def source_files(root):
    """The .c and .h files under root/src outside root/src/store, as paths relative to root."""
    out = []
    src = os.path.join(root, "src")
    for d, dirs, files in os.walk(src):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        rel_dir = os.path.relpath(d, root)
        if rel_dir == os.path.join("src", "store") or rel_dir.startswith(
                os.path.join("src", "store") + os.sep):
            dirs[:] = []
            continue
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                out.append(os.path.join(rel_dir, f))
    return out


def read_pending(root):
    path = os.path.join(root, "tests", "unit", "store-boundary.pending")
    entries = []
    if not os.path.exists(path):
        return entries
    with open(path, encoding="utf-8") as f:
        for raw in f:
            entry = raw.split("#", 1)[0].strip().rstrip("/")
            if entry:
                entries.append(entry)
    return entries


def pending_entry(rel, entries):
    for e in entries:
        if rel == e or rel.startswith(e + "/"):
            return e
    return None


def check_tree(root, strict, out):
    """Scans root. Returns (passed, failed, todo) and writes the report lines to out."""
    passed = failed = todo = 0
    entries = [] if strict else read_pending(root)
    used = set()
    for rel in source_files(root):
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            offences = scan_text(f.read())
        entry = pending_entry(rel, entries)
        if not offences:
            out.write("ok - %s\n" % rel)
            passed += 1
        elif entry:
            # One line per file: --strict lists each offence.
            used.add(entry)
            line, what = offences[0]
            out.write("not ok - %s:%d: %s%s # TODO still being moved into src/store/"
                      " (tests/unit/store-boundary.pending)\n"
                      % (rel, line, what, " (and %d more)" % (len(offences) - 1)
                         if len(offences) > 1 else ""))
            todo += len(offences)
        else:
            for line, what in offences:
                out.write("not ok - %s:%d: %s\n" % (rel, line, what))
                failed += 1
    for e in entries:
        if e not in used:
            out.write("not ok - tests/unit/store-boundary.pending: %s has no SQL outside the"
                      " store any more: remove the entry\n" % e)
            failed += 1
    return passed, failed, todo


# ------------------------------------------------------------------------ self-test

SELF_TEST_FILES = {
    "src/store/ok.c": (
        '#include "store/db.h"\n'
        'static const char q[] = "SELECT id FROM cases";\n'
        "int f(struct db *db) { return db_query(db, q, 0, 0, 0); }\n"
    ),
    "src/app/main.c": (
        "/* A program's main: opens a connection; SELECT in a comment is no SQL. */\n"
        '#include "store/db.h"\n'
        "// db_query( in a comment either\n"
        'static const char *m = "DELETE";  /* an HTTP method */\n'
        'static const char *w = "set the key first";\n'
        "static char c = '\"';\n"
        'static const char *n = "select a plan";\n'
        "int main(void) { struct db *db = db_open(0, 0); db_close(&db); return 0; }\n"
    ),
    "src/app/bad.c": (
        '#include "store/db.h"\n'                                      # 1: include, no connection
        "struct db;\n"                                                 # 2
        'static const char a[] = "SELECT id FROM cases WHERE id = ?";\n'  # 3
        "static const char b[] =\n"                                    # 4
        '\t"  insert into events (case_id) "\n'                        # 5
        '\t"VALUES (?)";\n'                                            # 6
        'static const char c[] = "UPDATE cases"\n'                     # 7
        '\t" SET status = ?";\n'                                       # 8
        'static const char d[] = "SELECT " COLUMNS " FROM t";\n'       # 9
        'static const char e[] = "START TRANSACTION";\n'               # 10
        "int g(struct db *db)\n"                                       # 11
        "{\n"                                                          # 12
        "\tstruct db_res *res = 0;\n"                                  # 13
        "\treturn db_query(db, a, 0, 0, &res) + db_commit(db);\n"      # 14
        "}\n"                                                          # 15
        'static const char f[] = "SET SESSION x = 1", h[] = "COMMIT";\n'  # 16
        'const char *i = u8"DELETE FROM t", *j = "LOCK TABLES t WRITE";\n'  # 17
        "#include <mysql.h>\n"                                         # 18
    ),
}

SELF_TEST_EXPECTED = {
    ("src/app/bad.c", 1), ("src/app/bad.c", 3), ("src/app/bad.c", 5), ("src/app/bad.c", 7),
    ("src/app/bad.c", 9), ("src/app/bad.c", 10), ("src/app/bad.c", 13), ("src/app/bad.c", 14),
    ("src/app/bad.c", 16), ("src/app/bad.c", 17), ("src/app/bad.c", 18),
}


class Lines:
    def __init__(self):
        self.lines = []

    def write(self, s):
        self.lines.extend(s.splitlines())


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

    with tempfile.TemporaryDirectory(prefix="store-boundary.") as tmp:
        for rel, text in SELF_TEST_FILES.items():
            os.makedirs(os.path.join(tmp, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(tmp, rel), "w", encoding="utf-8") as f:
                f.write(text)
        rep = Lines()
        p, f, t = check_tree(tmp, False, rep)
        found = set()
        for ln in rep.lines:
            m = re.match(r"not ok - ([^:]+):(\d+): ", ln)
            if m:
                found.add((m.group(1), int(m.group(2))))
        n_offences = sum(1 for ln in rep.lines if ln.startswith("not ok - "))
        missed = SELF_TEST_EXPECTED - found
        extra = found - SELF_TEST_EXPECTED
        check(not missed, "finds every offence at its line (missed: %s)" %
              (", ".join("%s:%d" % x for x in sorted(missed)) or "none"))
        check(not extra, "reports nothing else (extra: %s)" %
              (", ".join("%s:%d" % x for x in sorted(extra)) or "none"))
        check(f == n_offences and p == 1 and t == 0,
              "counts: src/app/main.c is clean, src/store/ is not scanned (%d clean, %d"
              " offences)" % (p, f))
        check(any("src/app/bad.c:3: SQL statement" in ln for ln in rep.lines),
              'reports "not ok - FILE:LINE: SQL statement ..."')

        # A pending entry turns the offences of its files into TODOs; a stale entry fails.
        os.makedirs(os.path.join(tmp, "tests", "unit"))
        with open(os.path.join(tmp, "tests", "unit", "store-boundary.pending"), "w") as fh:
            fh.write("# being moved\nsrc/app/bad.c\nsrc/gone\n")
        rep = Lines()
        p, f, t = check_tree(tmp, False, rep)
        todo_lines = [ln for ln in rep.lines if ln.endswith("(tests/unit/store-boundary.pending)")]
        check(t == n_offences and f == 1 and len(todo_lines) == 1 and
              todo_lines[0].startswith("not ok - src/app/bad.c:1: ") and
              "(and %d more)" % (n_offences - 1) in todo_lines[0],
              "pending offences are one TODO line per file, a stale pending entry fails"
              " (%d todo, %d failed)" % (t, f))
        rep = Lines()
        p, f, t = check_tree(tmp, True, rep)
        check(f == n_offences and t == 0,
              "--strict ignores the pending list (%d failed)" % f)
    return passed, failed


def main(argv):
    strict = False
    args = []
    for a in argv[1:]:
        if a == "--strict":
            strict = True
        elif a in ("-h", "--help"):
            sys.stdout.write(__doc__)
            return 0
        else:
            args.append(a)
    if len(args) > 1:
        sys.stderr.write("usage: store-boundary.py [--strict] [ROOT]\n")
        return 2
    root = args[0] if args else os.environ.get("OFFLOAD_SRC") or os.path.join(
        os.path.dirname(os.path.realpath(__file__)), "..", "..")
    root = os.path.realpath(root)
    if not os.path.isdir(os.path.join(root, "src")):
        sys.stderr.write("store-boundary: no src/ in %s\n" % root)
        print("0 passed, 1 failed")
        return 1

    p1, f1 = self_test(sys.stdout)
    print("# scanning %s/src outside src/store/%s" % (root, " (strict)" if strict else ""))
    p2, f2, todo = check_tree(root, strict, sys.stdout)
    if todo:
        print("# %d offence(s) in files still being moved into src/store/ (not counted;"
              " --strict counts them)" % todo)
    passed, failed = p1 + p2, f1 + f2
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
