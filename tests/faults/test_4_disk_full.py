"""Scenario 4: the files directory's disk is full (issue 6, item 3).

A 1 MiB tmpfs is mounted on DIR/files-small and handed to offload-inbound and offload-worker
as [files] dir (OFFLOAD_FILES_DIR). A reply with a 200 KB PDF (the raw message is about
280 KB) is piped to offload-inbound while the tmpfs is full, and again while it has room for
half the raw copy: both times the exit status is 75 (EX_TEMPFAIL: the MTA keeps the message)
and nothing is left behind (no message row, no attachment row, no event, no file). Once there
is room, the same message is stored whole (the raw copy on disk, the attachment's bytes in
the database since sql/009). A reply read over IMAP
in the same situation is not lost: the pass exits 0, the mailbox's last UID does not move,
and a later pass with room stores it.

Mounting needs root (CAP_SYS_ADMIN). Where mount is refused the test says so and is skipped;
where it works, any failure counts.
"""
import os
import subprocess

import lib
from faultlib import (Skip, case_rows, fake_pdf, inbound, last_uid, new_cases, park_all, reply, sha256,
                      stack_path, tag, worker_drain, worker_env, worker_ok)

PDF_BYTES = 200 * 1024


def _mount(path):
    os.makedirs(path, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0750", "tmpfs", path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    if p.returncode != 0:
        raise Skip("mount -t tmpfs is not permitted here (%s); the disk-full scenario needs it" %
                   p.stdout.decode("utf-8", "replace").strip())


def _umount(path):
    subprocess.run(["umount", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)


def _free(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _fill(path, leave=0):
    """Fills the file system of path, leaving about leave bytes (whole pages) free."""
    filler = os.path.join(path, "filler")
    if os.path.exists(filler):
        os.unlink(filler)
    with open(filler, "wb") as f:
        want = _free(path) - leave
        chunk = b"\0" * 4096
        written = 0
        try:
            while written + 4096 <= want:
                f.write(chunk)
                written += 4096
            f.flush()
            os.fsync(f.fileno())
        except OSError:
            pass
    return _free(path)


def _files(path):
    """Every regular file under path except the filler."""
    out = []
    for d, _, names in os.walk(path):
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p) and p != os.path.join(path, "filler"):
                out.append(os.path.relpath(p, path))
    return sorted(out)


def _nothing_stored(cid, msgid, small, what):
    n = lib.sql_one("SELECT COUNT(*) FROM messages WHERE direction='inbound' AND message_id=%s" % lib.sql_str(msgid))
    assert n == "0", "%s: %s message rows" % (what, n)
    n = lib.sql_one("SELECT COUNT(*) FROM attachments WHERE case_id=%s" % lib.sql_str(cid))
    assert n == "0", "%s: %s attachment rows" % (what, n)
    n = lib.sql_one("SELECT COUNT(*) FROM events WHERE type='REPLY_RECEIVED' AND case_id=%s" % lib.sql_str(cid))
    assert n == "0", "%s: %s REPLY_RECEIVED events" % (what, n)
    left = _files(small)
    assert not left, "%s: files left behind: %r" % (what, left)


def _stored(cid, msgid, pdf, small, what):
    n = lib.sql_one("SELECT COUNT(*) FROM messages WHERE direction='inbound' AND message_id=%s" % lib.sql_str(msgid))
    assert n == "1", "%s: %s message rows" % (what, n)
    rows = lib.sql("SELECT size, sha256, storage_path, id FROM attachments WHERE case_id=%s" % lib.sql_str(cid))
    assert len(rows) == 1, "%s: attachment rows %r" % (what, rows)
    size, digest, spath, aid = rows[0]
    assert int(size) == len(pdf) and digest == sha256(pdf), "%s: attachment row %r" % (what, rows[0])
    assert spath == "", "%s: storage_path %r: the bytes belong in the database" % (what, spath)
    assert lib.attachment_bytes(aid) == pdf, "%s: the stored bytes differ" % what
    raw = [f for f in _files(small) if f.startswith("raw/")]
    assert len(raw) == 1, "%s: raw copies %r" % (what, raw)


def test_disk_full_files_dir(ctx):
    park_all()
    small = stack_path("files-small")
    _mount(small)
    try:
        env = worker_env(OFFLOAD_FILES_DIR=small)
        cases = new_cases(2, "diskfull-" + tag())
        worker_drain(env=env)
        assert all(v == ("RUNNING", 1) for v in case_rows(cases).values()), case_rows(cases)
        (c1, a1), (c2, a2) = sorted(cases.items())

        # 1. offload-inbound with the disk full, then with room for the raw copy only.
        pdf = fake_pdf(PDF_BYTES)
        raw, msgid = reply(lib.outbox_to(a1)[0], a1, c1, "The signed W-9 is attached.", attachment=pdf)
        free = _fill(small)
        rc, err = inbound(raw, env=env)
        assert rc == 75, "offload-inbound with %d bytes free exited %d (want 75): %s" % (free, rc, err)
        assert "No space left" in err, "the reason is not logged: %s" % err
        _nothing_stored(c1, msgid, small, "after the disk-full refusal")
        free = _fill(small, leave=len(raw) // 2)
        assert 0 < free < len(raw), "free space %d for a %d-byte message" % (free, len(raw))
        rc, err = inbound(raw, env=env)
        assert rc == 75, "offload-inbound with room for half the raw copy exited %d: %s" % (rc, err)
        _nothing_stored(c1, msgid, small, "after the refusal with room for half the raw copy")
        os.unlink(os.path.join(small, "filler"))
        rc, err = inbound(raw, env=env)
        assert rc == 0, "offload-inbound with room exited %d: %s" % (rc, err)
        _stored(c1, msgid, pdf, small, "offload-inbound after space was freed")

        # 2. The same over IMAP: the pass goes on, the UID is read again later.
        pdf2 = fake_pdf(PDF_BYTES)
        raw2, msgid2 = reply(lib.outbox_to(a2)[0], a2, c2, "Here it is.", attachment=pdf2)
        uid0 = last_uid()
        lib.imap_append(raw2)
        _fill(small)
        before = set(_files(small))
        runs = [worker_ok(env=env), worker_ok(fake="+2m", env=env)]
        text = "\n".join(r.stderr for r in runs)
        assert "could not be stored now" in text and "No space left" in text, \
            "the IMAP tempfail is not logged:\n%s" % lib.worker_stderr(runs)
        assert last_uid() == uid0, "the last UID moved while the message could not be stored: %d -> %d" % (
            uid0, last_uid())
        n = lib.sql_one("SELECT COUNT(*) FROM messages WHERE direction='inbound' AND message_id=%s" %
                        lib.sql_str(msgid2))
        assert n == "0", "%s rows for the IMAP message while the disk was full" % n
        assert set(_files(small)) == before, "files changed while the disk was full: %r" % (
            sorted(set(_files(small)) ^ before))
        os.unlink(os.path.join(small, "filler"))
        runs = worker_drain(fake="+4m", env=env)
        assert last_uid() > uid0, "the last UID did not move once there was room:\n%s" % lib.worker_stderr(runs)
        n = lib.sql_one("SELECT COUNT(*) FROM messages WHERE direction='inbound' AND message_id=%s" %
                        lib.sql_str(msgid2))
        assert n == "1", "%s rows for the IMAP message after space was freed:\n%s" % (n, lib.worker_stderr(runs))
        rows = lib.sql("SELECT sha256 FROM attachments WHERE case_id=%s" % lib.sql_str(c2))
        assert rows == [[sha256(pdf2)]], "attachments of the IMAP reply: %r" % rows
        rows = case_rows(cases)
        assert all(v == ("INPUT_NEEDED", 1) for v in rows.values()), "cases %r" % rows
    finally:
        _umount(small)
