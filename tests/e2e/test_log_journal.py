"""Log lines carry their journal priority when stderr is the journal (issue 16).

systemd sets JOURNAL_STREAM to "device:inode" of the stream it gives a service as stderr;
a program whose fd 2 is that stream starts each line with "<N>" (sd-daemon(3)), which
journald turns into PRIORITY=N. Here fd 2 is a file and JOURNAL_STREAM names it, so the
prefix is visible as written.
"""
import os
import subprocess
import tempfile

from lib import env, worker_env


def _run(cmd, journal, extra_env=None):
    """Runs cmd with stderr to a file; journal: None (no JOURNAL_STREAM), "match" (names the
    file) or "other" (names another file). Returns stderr's text."""
    with tempfile.TemporaryFile() as errf:
        e = dict(extra_env if extra_env is not None else os.environ)
        e.pop("JOURNAL_STREAM", None)
        st = os.fstat(errf.fileno())
        if journal == "match":
            e["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        elif journal == "other":
            e["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino + 1)
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf, env=e,
                       timeout=120)
        errf.seek(0)
        return errf.read().decode("utf-8", "replace")


def test_error_is_priority_3_in_the_journal(ctx):
    cmd = [os.path.join(env().bin, "offload-worker"), "-c", "/nonexistent/offload.conf", "--once"]
    out = _run(cmd, "match")
    assert out.startswith("<3>offload-worker: error: "), "stderr %r" % out


def test_info_is_priority_6_and_the_text_is_unchanged(ctx):
    cmd = [os.path.join(env().bin, "offload-worker"), "-c", env().config, "--once"]
    out = _run(cmd, "match", worker_env())
    lines = out.splitlines()
    summary = [l for l in lines if ": pass: " in l]
    assert summary and summary[-1].startswith("<6>offload-worker: info: pass: "), "stderr %r" % out
    assert all(l[:3] in ("<3>", "<4>", "<6>", "<7>") for l in lines), "a line without a priority: %r" % out


def test_no_prefix_outside_the_journal(ctx):
    cmd = [os.path.join(env().bin, "offload-worker"), "-c", "/nonexistent/offload.conf", "--once"]
    for journal in (None, "other"):
        out = _run(cmd, journal)
        assert out.startswith("offload-worker: error: "), "JOURNAL_STREAM %s: stderr %r" % (journal, out)
