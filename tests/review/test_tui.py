"""The full-screen reviewer, driven through a pseudo-terminal as a person would: keys in, the screen read back through
a terminal emulator (pexpect + pyte)."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from ..conftest import need

pexpect = need("pexpect")
pyte = need("pyte")

from assistcode.project import Project  # noqa: E402

COLS, ROWS = 120, 45


class Terminal:
    def __init__(self, project: Path, *args: str) -> None:
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        env = dict(os.environ, TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1")
        self.child = pexpect.spawn(sys.executable, ["-m", "assistcode", "review", "--project", str(project), *args],
                                   env=env, dimensions=(ROWS, COLS))

    def pump(self, seconds: float = 0.3) -> None:
        end = time.time() + seconds
        while time.time() < end:
            try:
                self.stream.feed(self.child.read_nonblocking(65536, timeout=0.05))
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                return

    @property
    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, needle: str, timeout: float = 20) -> str:
        end = time.time() + timeout
        while time.time() < end:
            self.pump(0.1)
            if needle in self.text:
                return self.text
        raise AssertionError(f"{needle!r} never appeared; the screen:\n{self.text}")

    def keys(self, keys: str, expect: str | None = None) -> str:
        self.child.send(keys)
        return self.wait_for(expect) if expect else (self.pump(0.4) or self.text)


def decisions(project: Path) -> list[tuple]:
    with Project(project) as p:
        return p.db.execute("SELECT reviewer, action, codes_after, memo, shown FROM review_decisions ORDER BY id").fetchall()


@pytest.fixture
def queued_dir(queued: Project) -> Path:
    path = queued.path
    queued.close()
    return path


def test_accept_edit_memo_skip_undo_quit_and_resume(queued_dir: Path) -> None:
    t = Terminal(queued_dir, "--reviewer", "ann")
    screen = t.wait_for("Suggested by")
    assert "ann · 0 decided · 20 left" in screen and "model failed" in screen  # the failed segment comes first
    screen = t.keys("a", "saved: accept")
    assert "1 decided" in screen
    # the next item shows its suggestion with the rationale, confidence and the codebook definition
    assert "why: reason" in screen and "definition:" in screen
    t.keys("m", "Memo: _")
    t.keys("ambiguous turn", "Memo: ambiguous turn_")
    t.keys("\r", "memo kept")
    t.keys("e", "Codes (type to search)")
    screen = t.keys("nation", "national")
    assert "organisations" not in screen.split("Codes (type to search)")[1].split("\n", 2)[1]  # filtered
    t.keys(" ")
    t.keys("\r", "saved: edit")
    t.keys("s", "saved: skip")
    screen = t.keys("u", "saved: undid your skip")
    item_after_undo = [line for line in screen.splitlines() if "item " in line][0]
    screen = t.keys("b", "back 1")  # go back to the latest decision: shown with what was decided
    assert "Your decision: edit -> every-level, national-level" in screen
    t.keys("q")
    t.child.expect(pexpect.EOF, timeout=10)
    rows = decisions(queued_dir)
    assert [r[1] for r in rows] == ["accept", "edit", "skip", "undo"]
    assert rows[1][2] == '["every-level", "national-level"]' and rows[1][3] == "ambiguous turn"
    # come back: the same item is waiting
    t2 = Terminal(queued_dir, "--reviewer", "ann")
    screen = t2.wait_for("Suggested by")
    assert item_after_undo.split("item ")[1].split(" ")[0] in screen
    t2.keys("q")
    t2.child.expect(pexpect.EOF, timeout=10)


def test_blind_mode_codes_first_then_shows_the_suggestion(queued_dir: Path) -> None:
    t = Terminal(queued_dir, "--reviewer", "bea", "--blind")
    screen = t.wait_for("blind: the suggestion shows after you pick your codes")
    assert "Suggested by" not in screen
    t.keys("\r", "Suggested by")  # no blind codes
    t.keys("a", "saved: accept")
    screen = t.wait_for("blind: the suggestion shows")
    assert "why: reason" not in screen
    t.keys("organ")
    t.keys(" ")
    screen = t.keys("\r", "Your blind codes: organisations")
    assert "Suggested by" in screen and "why: reason" in screen
    t.keys("r", "saved: reject")
    t.keys("\x03")  # ctrl-c quits from the code picker, where q is a letter to search for
    t.child.expect(pexpect.EOF, timeout=10)
    rows = decisions(queued_dir)
    assert [r[1] for r in rows] == ["accept", "reject"]
    assert '"blind_codes": ["organisations"]' in rows[1][4]


def test_kill_9_keeps_every_decision_the_screen_confirmed(queued_dir: Path) -> None:
    t = Terminal(queued_dir, "--reviewer", "cy")
    t.wait_for("Suggested by")
    confirmed = 0
    for k in range(6):
        t.keys("a" if k % 2 else "r", f"{k + 1} decided")
        confirmed += 1
    t.child.send("a")  # one more key, killed before its confirmation may show
    os.kill(t.child.pid, signal.SIGKILL)
    t.child.expect(pexpect.EOF, timeout=10)
    stored = decisions(queued_dir)
    assert confirmed <= len(stored) <= confirmed + 1
    assert [r[1] for r in stored[:confirmed]] == ["reject", "accept"] * 3
