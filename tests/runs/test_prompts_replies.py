import pytest

from assistcode.errors import InputError
from assistcode.model import Segment
from assistcode.prompts import codebook_context, get_template, list_templates, load_template
from assistcode.runs.replies import ReplyError, locate, parse_json, reply_schema, validate_reply


def test_shipped_templates():
    names = {t.name: t for t in list_templates()}
    assert {"deductive", "deductive-batch", "deductive-cot", "inductive"} <= set(names)
    assert names["deductive-batch"].output == "batch" and names["deductive-cot"].output == "cot"


def test_codebook_prefix_is_byte_identical_and_segment_last(coded_project):
    t = get_template("deductive")
    cb = coded_project.codebook()
    ctx = {"codes": codebook_context(cb), "codebook_name": cb.name, "examples": []}
    a = t.render(segment={"id": "1", "text": "first", "speaker": "R"}, **ctx)
    b = t.render(segment={"id": "2", "text": "second", "speaker": None}, **ctx)
    assert a.messages[0] == b.messages[0]
    assert a.messages[-1]["content"].rstrip().endswith('first\n"""') and a.hash != b.hash


def test_missing_variable_and_unknown_key(tmp_path):
    with pytest.raises(InputError, match="needs a variable the context lacks: 'segment' is undefined"):
        get_template("deductive").render(codes=[], codebook_name="x", examples=[])
    path = tmp_path / "t.yaml"
    path.write_text("name: x\nversion: 1\ndescription: d\nmessages: [{role: user, content: hi}]\ntemperature: 1\n")
    with pytest.raises(InputError, match="unknown key 'temperature'"):
        load_template(path)


SEG = Segment("s1", "d1", 0, 100, 160, "We’re lucky here… the chief nurse drives safety.", "R")


def test_validation_drops_unknown_codes_and_locates_quotes():
    data = parse_json('```json\n{"codes": [{"code": "safety", "rationale": "r", "evidence": "We\'re lucky here...", "confidence": 0.8},'
                      '{"code": "made-up", "evidence": "x", "confidence": 0.5},'
                      '{"code": "leadership", "evidence": "the CEO said so", "confidence": 7}]}\n```')
    v = validate_reply(data, "codes", [SEG], {"safety", "leadership"})["s1"]
    assert v.unknown_codes == ["made-up"] and v.quotes_not_found == 1 and v.bad_confidence == 1
    safety, leadership = v.proposals
    assert (safety.evidence_start, safety.evidence_end) == (100, 100 + len("We’re lucky here"))  # a trailing ellipsis only marks elision
    assert safety.evidence_found and not leadership.evidence_found and leadership.evidence_start is None
    assert leadership.confidence is None


@pytest.mark.parametrize("text, message", [("", "empty reply"), ('{"codes": [', "not JSON"), ("[1]", "not an object"),
                                           ('{"answer": 1}', "no 'codes' list")])
def test_unusable_replies(text, message):
    with pytest.raises(ReplyError, match=message):
        validate_reply(parse_json(text), "codes", [SEG], {"safety"})


def test_batch_reply_leaving_a_segment_out():
    other = Segment("s2", "d1", 1, 0, 5, "hello", None)
    out = validate_reply({"segments": [{"segment_id": "s2", "codes": []}]}, "batch", [SEG, other], {"safety"})
    assert list(out) == ["s2"]


def test_schema_restricts_codes():
    schema = reply_schema("codes", ["a", "b"])
    assert schema["properties"]["codes"]["items"]["properties"]["code"]["enum"] == ["a", "b"]


def test_locate_exact_then_normalised():
    assert locate("chief nurse", SEG.text) == (SEG.text.index("chief nurse"), SEG.text.index("chief nurse") + 11)
    assert locate("  WE'RE   LUCKY ", SEG.text) == (0, 11)
    assert locate("lucky ... safety", SEG.text) == (6, len(SEG.text) - 1)
    assert locate("not there", SEG.text) is None
