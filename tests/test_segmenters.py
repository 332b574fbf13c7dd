import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistcode.model import Document
from assistcode.segmenters import paragraphs, segment, sentences, spans_for, turns, windows


def speakers_of(text, **kw):
    return [(sp, text[s:e]) for s, e, sp in turns(text, **kw)]


@pytest.mark.parametrize(
    "label", ["Interviewer", "I", "R", "P3", "Q", "A", "JW046", "JW 045", "Participant 12", "DR. JONES", "MARY SMITH"]
)
def test_turn_conventions(label):
    text = f"{label}: first turn\nInterviewer: second turn"
    assert speakers_of(text)[0] == (label, "first turn")


def test_turn_text_before_first_label_is_kept():
    text = "Site B, 3 May\n\nI: hello\nR: hi there.\nmore from R"
    assert speakers_of(text) == [(None, "Site B, 3 May"), ("I", "hello"), ("R", "hi there.\nmore from R")]


def test_capitalised_names_need_to_recur():
    text = "Sarah: one\nNote: not a speaker\nTom: two\nSarah: three\nTom: four"
    got = speakers_of(text)
    assert [s for s, _ in got] == ["Sarah", "Tom", "Sarah", "Tom"]
    assert got[0][1] == "one\nNote: not a speaker"


def test_declared_speakers_count_once():
    assert speakers_of("Alice Wong: hi", speakers=("Alice Wong",)) == [("Alice Wong", "hi")]


def test_timestamps_before_labels():
    text = "[00:01:02] Interviewer: start\n00:02 P1: answer"
    assert speakers_of(text) == [("Interviewer", "start"), ("P1", "answer")]


def test_custom_pattern():
    text = "<<Ann>> hello\n<<Bob>> hi"
    assert speakers_of(text, pattern=r"^<<(?P<speaker>\w+)>>\s*") == [("Ann", "hello"), ("Bob", "hi")]


def test_no_labels_falls_back_to_paragraphs():
    assert turns("one\n\ntwo") == paragraphs("one\n\ntwo") == [(0, 3, None), (5, 8, None)]


def test_sentences_keep_speaker_and_respect_abbreviations():
    text = "I: Did Dr. Smith agree? Yes. It went well...  Then e.g. this!\nR: No."
    got = [(sp, text[s:e]) for s, e, sp in sentences(text)]
    assert got == [("I", "Did Dr. Smith agree?"), ("I", "Yes."), ("I", "It went well..."),
                   ("I", "Then e.g. this!"), ("R", "No.")]


def test_windows_overlap_by_words():
    text = "a b c d e f g"
    assert [text[s:e] for s, e, _ in windows(text, 3, 1)] == ["a b c", "c d e", "e f g"]
    assert [text[s:e] for s, e, _ in windows(text, 10, 2)] == [text]


def test_segment_ids_are_stable_and_path_free():
    doc = Document("I: hello\nR: hi", title="a", metadata={"source": "x.txt"})
    again = Document("I: hello\nR: hi", title="b", metadata={"source": "elsewhere/y.txt"})
    assert [s.id for s in segment(doc)] == [s.id for s in segment(again)]
    assert segment(doc)[0].id == "s" + __import__("hashlib").blake2b(
        f"{doc.text_hash}:3:8".encode(), digest_size=8).hexdigest()
    keyed = Document("I: hello\nR: hi", key="row:2")
    assert segment(keyed)[0].id != segment(doc)[0].id  # equal text in two table rows: two documents


texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(list("aZ é.!?…:\n\t \r\u00a0\u2028ĳ😀") + ["I:", "P3:", "\n\n", "Dr.", "JW 045:", "Sarah:"]),
             max_size=120).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(text=texts, method=st.sampled_from(["turn", "paragraph", "sentence", "window", "row"]),
       size=st.integers(1, 8), overlap=st.integers(0, 7))
def test_offsets_invariant_on_arbitrary_text(text, method, size, overlap):
    options = {"size": size, "overlap": min(overlap, size - 1)} if method == "window" else {}
    doc = Document(text)
    segs = segment(doc, method, **options)
    previous_end = 0
    for i, s in enumerate(segs):
        assert doc.text[s.start:s.end] == s.text
        assert s.text and s.text == s.text.strip()
        assert s.position == i
        if method != "window":
            assert s.start >= previous_end  # no overlap, in order
        previous_end = s.end
    # nothing but whitespace (and speaker labels) is left out
    if method in ("paragraph", "window", "row"):
        covered = "".join(s.text for s in segs)
        assert "".join(text.split()) == "".join(covered.split()) or method == "window"
    assert len({s.id for s in segs}) == len(segs)


def test_unknown_segmenter_is_a_clear_error():
    with pytest.raises(Exception, match="unknown segmenter 'lines'.*turn, paragraph"):
        spans_for("x", "lines")
