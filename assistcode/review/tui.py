"""``assistcode review``: the full-screen reviewer (prompt_toolkit).

Every key that decides commits to the store before the screen says "saved", so whatever the screen confirmed
survives a crash; quitting keeps the lease, so coming back opens the same item.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import HSplit, Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl
from prompt_toolkit.styles import Style

from ..errors import InputError
from ..project import Project
from . import decisions as dec

STYLE = Style.from_dict({
    "header": "reverse", "dim": "#888888", "segment": "bold", "evidence": "bold underline #ffaf00",
    "code": "bold #5fafff", "ok": "#5faf5f bold", "warn": "#ff5f5f bold", "key": "reverse", "cursor": "reverse",
    "picked": "#5faf5f",
})
HELP = ("a accept  r reject  e edit codes  m memo  s skip  u undo  b back  q quit  ? help",
        "pick codes: type to search  up/down move  space toggle  enter done  esc cancel  ctrl-c quit")


@dataclass
class State:
    mode: str = "view"  # view | blind (code before seeing the suggestion) | pick | memo | help | done
    item: dec.Item | None = None
    picked: set[str] = field(default_factory=set)
    search: str = ""
    cursor: int = 0
    memo: str = ""
    message: tuple[str, str] = ("", "")
    blind_codes: list[str] | None = None
    revisiting: int = -1
    """Position in the reviewer's history when going back (-1: the queue)."""
    decided: int = 0
    open_items: int = 0


class ReviewApp:
    """One reviewer at the keyboard, over one project's queue."""

    def __init__(self, project: Project, reviewer: str, *, blind: bool = False, adjudicate: bool = False,
                 context: int = 2) -> None:
        self.project, self.db, self.reviewer = project, project.db, reviewer
        self.codebook = project.codebook()
        self.blind, self.adjudicate, self.context = blind, adjudicate, context
        self.state = State()
        self.started = time.time()
        self.app: Application = Application(layout=self._layout(), key_bindings=self._keys(), style=STYLE,
                                            full_screen=True, mouse_support=False)
        self._refresh_counts()
        self._next()

    # ---- data ---------------------------------------------------------------------------------------------------
    def _refresh_counts(self) -> None:
        status = "adjudicate" if self.adjudicate else "open"
        self.state.open_items = self.db.execute("SELECT count(*) FROM review_items WHERE status = ?", (status,)).fetchone()[0]

    def _show(self, item: dec.Item | None) -> None:
        s = self.state
        s.item = dec.describe(self.db, item, self.codebook, self.context, self.reviewer) if item else None
        # an item decided before (going back, undo) keeps its memo: deciding again must not drop it
        s.memo = ((s.item.my_last or {}).get("memo") or "") if s.item else ""
        s.search, s.cursor = "", 0
        s.blind_codes = None
        if item is None:
            s.mode = "done"
        elif self.blind and not self.adjudicate and s.item.my_last is None:
            s.mode, s.picked = "blind", set()  # code it first, the suggestion unseen
        else:
            s.mode = "view"

    def _next(self) -> None:
        self.state.revisiting = -1
        self._show(dec.claim(self.db, self.reviewer, adjudicate=self.adjudicate))

    def _decide(self, action: str, codes: list[str] | None = None) -> None:
        s = self.state
        item = s.item
        if item is None:
            return
        shown = {"blind_codes": s.blind_codes, "suggestion_shown": True, "provenance": item.provenance,
                 "confidence": {x["code"]: x["confidence"] for x in item.suggestions}, "reasons": item.reasons,
                 "screen": "tui"}
        try:
            dec.decide(self.db, item, self.reviewer, action, codes=codes, memo=s.memo or None, shown=shown,
                             codebook=self.codebook)
        except InputError as exc:
            s.message = ("warn", str(exc))
            return
        s.decided += 1
        s.message = ("ok", f"saved: {action} {item.uid[:8]} ({s.decided} this session)")
        self._refresh_counts()
        self._next()

    # ---- keys ---------------------------------------------------------------------------------------------------
    def _keys(self) -> KeyBindings:
        kb = KeyBindings()
        view = Condition(lambda: self.state.mode == "view")
        pick = Condition(lambda: self.state.mode in ("pick", "blind"))
        memo = Condition(lambda: self.state.mode == "memo")
        idle = Condition(lambda: self.state.mode in ("done", "help"))
        s = self.state

        @kb.add("a", filter=view)
        def _(e: KeyPressEvent) -> None:
            self._decide("adjudicate", s.item.proposed) if self.adjudicate else self._decide("accept")

        @kb.add("r", filter=view)
        def _(e: KeyPressEvent) -> None:
            self._decide("adjudicate", []) if self.adjudicate else self._decide("reject")

        @kb.add("e", filter=view)
        def _(e: KeyPressEvent) -> None:
            start = (s.item.my_last or {}).get("codes") if s.item and s.item.my_last else None
            s.picked = set(start if start is not None else (s.item.proposed if s.item else []))
            s.mode, s.search, s.cursor = "pick", "", 0

        @kb.add("m", filter=view)
        def _(e: KeyPressEvent) -> None:
            s.mode = "memo"

        @kb.add("s", filter=view)
        def _(e: KeyPressEvent) -> None:
            self._decide("skip")

        @kb.add("u", filter=view | idle)
        def _(e: KeyPressEvent) -> None:
            rec = dec.undo(self.db, self.reviewer)
            if rec is None:
                s.message = ("warn", "nothing to undo")
                return
            s.decided = max(0, s.decided - 1)
            s.message = ("ok", f"saved: undid your {rec.undone_action} on {rec.item_id[:8]}")
            self._refresh_counts()
            self._show(dec.find_item(self.db, rec.item_id))

        @kb.add("b", filter=view | idle)
        def _(e: KeyPressEvent) -> None:
            past = dec.history(self.db, self.reviewer)
            if s.revisiting + 1 >= len(past):
                s.message = ("warn", "no earlier decision")
                return
            s.revisiting += 1
            self._show(dec.find_item(self.db, past[s.revisiting]))
            s.message = ("ok", f"back {s.revisiting + 1}: decide again to change it, n for the queue")

        @kb.add("n", filter=view | idle)
        def _(e: KeyPressEvent) -> None:
            self._next()

        @kb.add("?", filter=view | idle)
        def _(e: KeyPressEvent) -> None:
            s.mode = "view" if s.mode == "help" else "help"

        @kb.add("q", filter=view | idle)
        @kb.add("c-c")
        def _(e: KeyPressEvent) -> None:
            e.app.exit()

        @kb.add("<any>", filter=pick)
        def _(e: KeyPressEvent) -> None:
            ch = e.data
            if ch == " ":
                codes = self._filtered()
                if codes:
                    s.picked ^= {codes[min(s.cursor, len(codes) - 1)].id}
            elif ch.isprintable():
                s.search += ch
                s.cursor = 0

        @kb.add("backspace", filter=pick)
        def _(e: KeyPressEvent) -> None:
            s.search = s.search[:-1]

        @kb.add("up", filter=pick)
        def _(e: KeyPressEvent) -> None:
            s.cursor = max(0, s.cursor - 1)

        @kb.add("down", filter=pick)
        def _(e: KeyPressEvent) -> None:
            s.cursor = min(max(len(self._filtered()) - 1, 0), s.cursor + 1)

        @kb.add("enter", filter=pick)
        def _(e: KeyPressEvent) -> None:
            codes = sorted(s.picked)
            if s.mode == "blind":
                s.blind_codes, s.mode = codes, "view"  # the blind pass is done: now the suggestion
                s.message = ("ok", "your codes noted; now the suggestion: a accept, r reject, e edit")
                return
            s.mode = "view"
            self._decide("adjudicate" if self.adjudicate else "edit", codes)

        @kb.add("escape", filter=pick | memo, eager=True)
        def _(e: KeyPressEvent) -> None:
            if s.mode != "blind":
                s.mode = "view"

        @kb.add("<any>", filter=memo)
        def _(e: KeyPressEvent) -> None:
            if e.data.isprintable():
                s.memo += e.data

        @kb.add("backspace", filter=memo)
        def _(e: KeyPressEvent) -> None:
            s.memo = s.memo[:-1]

        @kb.add("enter", filter=memo)
        def _(e: KeyPressEvent) -> None:
            s.mode = "view"
            s.message = ("ok", "memo kept for this item's decision")

        return kb

    def _filtered(self) -> list[Any]:
        q = self.state.search.lower()
        named = [c for c in self.codebook.codes if not q or q in c.id.lower() or q in c.name.lower()]
        return named + [c for c in self.codebook.codes if q and c not in named and q in c.definition.lower()]

    # ---- screen -------------------------------------------------------------------------------------------------
    def _header(self) -> StyleAndTextTuples:
        s = self.state
        pace = pace_text(s.decided, time.time() - self.started)
        what = "adjudication" if self.adjudicate else ("blind review" if self.blind else "review")
        return [("class:header", f" assistcode {what} · {self.reviewer} · {s.decided} decided · "
                                 f"{s.open_items} left · pace {pace} ")]

    def _segment(self, item: dec.Item) -> StyleAndTextTuples:
        spans = sorted({tuple(x["span"]) for x in item.suggestions if x["span"]})
        show_evidence = self.state.mode != "blind"
        out: StyleAndTextTuples = []
        at = 0
        for a, b in (spans if show_evidence else []):
            if a < at:
                continue
            out += [("class:segment", item.text[at:a]), ("class:evidence", item.text[a:b])]
            at = b
        out.append(("class:segment", item.text[at:]))
        return out

    def _body(self) -> StyleAndTextTuples:
        s = self.state
        if s.mode == "done":
            what = "adjudication" if self.adjudicate else "review"
            return [("", f"\n  Nothing left to {what} for {self.reviewer}. "
                         "u undo · b back · q quit · `assistcode review status` for the totals\n")]
        if s.mode == "help":
            return [("", "\n  " + "\n  ".join(HELP) + "\n")]
        item = s.item
        assert item is not None
        out: StyleAndTextTuples = [("class:dim", f"{item.document} · item {item.uid[:12]} · "
                                                 f"{', '.join(item.reasons) or 'confident'}"
                                                 f"{' · audit sample' if item.audit else ''}\n\n")]
        for t in item.before:
            out.append(("class:dim", f"  {t}\n"))
        out.append(("", "> "))
        out += self._segment(item)
        out.append(("", "\n"))
        for t in item.after:
            out.append(("class:dim", f"  {t}\n"))
        out.append(("", "\n"))
        if s.mode in ("pick", "blind"):
            out.append(("", "Codes (type to search): " + s.search + "_\n"))
            for i, c in enumerate(self._filtered()):
                mark = "[x]" if c.id in s.picked else "[ ]"
                style = "class:cursor" if i == s.cursor else ("class:picked" if c.id in s.picked else "")
                out.append((style, f" {mark} {c.name}"))
                out.append(("class:dim", f"  {c.definition[:90]}\n"))
            if s.mode == "blind":
                out.append(("class:dim", "\n(blind: the suggestion shows after you pick your codes)\n"))
            return out
        prov = item.provenance.get("provider", {})
        tmpl = item.provenance.get("template", {})
        label = f"{prov.get('model', item.coder)}" + (f" · {tmpl.get('name')} v{tmpl.get('version')}" if tmpl else "")
        out.append(("", f"Suggested by {label}: "))
        if not item.proposed:
            out.append(("class:code", "no code\n"))
        else:
            out.append(("", "\n"))
        if str(tmpl.get("name", "")).startswith("score-") or prov.get("provider") in ("similarity", "trained"):
            out.append(("class:dim", "  (scored, not written: no rationale or evidence; the number is the calibrated "
                                     "probability)\n"))
        for x in item.suggestions:
            conf = f" [{x['confidence']:.2f}]" if x["confidence"] is not None else ""
            out.append(("class:code", f"  {x['name']}{conf}\n"))
            if x["definition"]:
                out.append(("class:dim", f"    definition: {x['definition'][:300]}\n"))
            if x["rationale"]:
                out.append(("", f"    why: {x['rationale'][:300]}\n"))
            if x["evidence"] and x["span"] is None:  # the quote is not in the segment: say so, do not underline it
                out.append(("class:warn", f"    evidence NOT FOUND in this segment: \"{x['evidence'][:200]}\"\n"))
            elif x["evidence"]:
                out.append(("", f"    evidence: \"{x['evidence'][:200]}\"\n"))
        if s.blind_codes is not None:
            out.append(("", f"\nYour blind codes: {', '.join(s.blind_codes) or 'none'}\n"))
        if item.my_last:
            out.append(("class:ok", f"\nYour decision: {item.my_last['action']} -> "
                                    f"{', '.join(item.my_last['codes']) or 'no code'}\n"))
        if s.mode == "memo" or s.memo:
            out.append(("", f"\nMemo: {s.memo}" + ("_" if s.mode == "memo" else "") + "\n"))
        return out

    def _wrapped_body(self) -> StyleAndTextTuples:
        try:
            width = self.app.output.get_size().columns
        except Exception:  # no output yet (the first render sizes it)
            width = 100
        return wrap_words(self._body(), max(width - 1, 20))

    def _footer(self) -> StyleAndTextTuples:
        style, text = self.state.message
        line = HELP[1] if self.state.mode in ("pick", "blind") else HELP[0]
        if self.state.mode == "memo":
            line = "type the memo  enter keep  esc cancel"
        out: StyleAndTextTuples = [("class:dim", line)]
        if text:
            out = [(f"class:{style}", text + "\n")] + out
        return out

    def _layout(self) -> Layout:
        return Layout(HSplit([
            Window(FormattedTextControl(self._header), height=1),
            Window(FormattedTextControl(self._wrapped_body), wrap_lines=True),
            Window(FormattedTextControl(self._footer), height=2),
        ]))

    def run(self) -> int:
        self.app.run()
        return self.state.decided


def pace_text(decided: int, seconds: float) -> str:
    """The reviewer's pace: seconds per item from the first decision on, and items per hour once there are five
    (one quick decision does not make 700 an hour)."""
    if not decided:
        return "-"
    per = seconds / decided
    text = f"{per:.0f} s/item" if per < 120 else f"{per / 60:.1f} min/item"
    return text + (f" (~{3600 / max(per, 1e-9):.0f}/h)" if decided >= 5 else "")


def wrap_words(fragments: StyleAndTextTuples, width: int) -> StyleAndTextTuples:
    """Break styled text at spaces so that no line exceeds ``width`` (a longer word still wraps by character);
    a continued line keeps its line's indent."""
    out: StyleAndTextTuples = []
    col, indent = 0, ""
    for frag in fragments:
        style, text = frag[0], frag[1]
        for piece in re.split(r"(\n| +)", text):
            if not piece:
                continue
            if piece == "\n":
                out.append((style, "\n"))
                col, indent = 0, ""
                continue
            if col == 0 and piece.isspace():
                indent = piece if len(piece) < width // 2 else ""
            if piece.isspace():
                if col + len(piece) <= width:
                    out.append((style, piece))
                    col += len(piece)
                continue
            if col and col + len(piece) > width:
                out.append((style, "\n" + indent))
                col = len(indent)
            out.append((style, piece))
            col += len(piece)
    return out


def run_review(project: Project, reviewer: str, **options: Any) -> int:
    """Open the reviewer on the project's queue; returns the number of decisions made."""
    if project.db.execute("SELECT count(*) FROM review_items").fetchone()[0] == 0:
        raise InputError("the review queue is empty", hint="fill it with `assistcode review queue --run RUN`")
    return ReviewApp(project, reviewer, **options).run()


__all__ = ["ReviewApp", "run_review"]
