"""REFI-QDA archives built by hand for the tests: a realistic NVivo-style export, and hostile ones."""
from __future__ import annotations

import zipfile
from pathlib import Path

INTERVIEW_1 = ("Interviewer: How is safety led on your ward?\r\n"
               "Nurse: Our matron walks the ward every morning and everyone owns safety.\r\n"
               "Interviewer: And from the centre?\r\n"
               "Nurse: Too many national bodies send mixed messages.\r\n")
INTERVIEW_2 = "Manager: The chief nurse drives it, with the medical director backing her — quality needs the top."

G = {  # GUIDs as NVivo writes them: upper case, some in braces
    "u_ann": "{6B29FC40-CA47-1067-B31D-00DD010662DA}", "u_bob": "7C9E6679-7425-40DE-944B-E07FC1F90AE7",
    "c_lead": "{0A1B2C3D-0000-4000-8000-000000000001}", "c_dist": "0A1B2C3D-0000-4000-8000-000000000002",
    "c_nat": "0A1B2C3D-0000-4000-8000-000000000003", "c_org": "0A1B2C3D-0000-4000-8000-000000000004",
    "s1": "11111111-1111-4111-8111-111111111111", "s2": "22222222-2222-4222-8222-222222222222",
    "n1": "33333333-3333-4333-8333-333333333333",
}


def span(text: str, phrase: str) -> tuple[int, int]:
    """Offsets of ``phrase`` in ``text`` as a QDA tool counts them (characters of the plain text, CRLF as two)."""
    at = text.index(phrase)
    return at, at + len(phrase)


def nvivo_project(folder: Path) -> Path:
    """An NVivo-style .qdpx: nested codes (one with no isCodable), two users, a Note on a coding, a memo written as
    Description, an internal source with CRLF line ends, an external source beside the archive, GUIDs in braces,
    the project file named after the project, and a picture source that assistcode leaves out."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manager.txt").write_text(INTERVIEW_2, encoding="utf-8")
    a1, b1 = span(INTERVIEW_1, "Our matron walks the ward every morning and everyone owns safety.")
    a2, b2 = span(INTERVIEW_1, "Too many national bodies send mixed messages.")
    a3, b3 = span(INTERVIEW_2, "The chief nurse drives it, with the medical director backing her")
    xml = f"""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="Ward safety" origin="NVivo 14" creatingUserGUID="{G['u_ann']}">
  <Users>
    <User guid="{G['u_ann']}" name="Ann Smith"/>
    <User guid="{G['u_bob']}" name="Bob Jones"/>
  </Users>
  <CodeBook><Codes>
    <Code guid="{G['c_lead']}" name="Leadership" isCodable="true" color="#FF0000">
      <Description>Who leads quality and safety.</Description>
      <Code guid="{G['c_dist']}" name="Distributed leadership" isCodable="true">
        <Description>Leadership shared across levels.</Description>
        <Code guid="{G['c_nat']}" name="National level" isCodable="true"/>
      </Code>
      <Code guid="{G['c_org']}" name="Organisations"/>
    </Code>
  </Codes></CodeBook>
  <Sources>
    <TextSource guid="{G['s1']}" name="Nurse interview" plainTextPath="internal://{G['s1']}.txt" creatingUser="{G['u_ann']}">
      <PlainTextSelection guid="aaaaaaaa-0000-4000-8000-000000000001" startPosition="{a1}" endPosition="{b1}" creatingUser="{G['u_ann']}">
        <Coding guid="bbbbbbbb-0000-4000-8000-000000000001" creatingUser="{G['u_ann']}"><CodeRef targetGUID="{G['c_dist']}"/>
          <NoteRef targetGUID="{G['n1']}"/></Coding>
        <Coding guid="bbbbbbbb-0000-4000-8000-000000000002" creatingUser="{G['u_bob']}"><CodeRef targetGUID="{G['c_lead']}"/></Coding>
      </PlainTextSelection>
      <PlainTextSelection guid="{{AAAAAAAA-0000-4000-8000-000000000002}}" startPosition="{a2}" endPosition="{b2}" creatingUser="{G['u_bob']}">
        <Description>Bob: clear national-level complaint.</Description>
        <Coding guid="bbbbbbbb-0000-4000-8000-000000000003"><CodeRef targetGUID="{G['c_nat']}"/></Coding>
      </PlainTextSelection>
    </TextSource>
    <TextSource guid="{G['s2']}" name="Manager interview" plainTextPath="manager.txt">
      <PlainTextSelection guid="aaaaaaaa-0000-4000-8000-000000000003" startPosition="{a3}" endPosition="{b3}">
        <Coding guid="bbbbbbbb-0000-4000-8000-000000000004" creatingUser="{G['u_ann']}"><CodeRef targetGUID="{G['c_org']}"/></Coding>
      </PlainTextSelection>
    </TextSource>
    <PictureSource guid="44444444-4444-4444-8444-444444444444" name="Ward photo" path="internal://photo.png"/>
  </Sources>
  <Notes>
    <Note guid="{G['n1']}" name="Ann's memo"><PlainTextContent>Matron as an ordinary leader.</PlainTextContent></Note>
  </Notes>
</Project>
"""
    path = folder / "ward.qdpx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Ward safety.qde", xml)
        z.writestr(f"sources/{G['s1']}.txt", INTERVIEW_1.encode("utf-8"))
        z.writestr("sources/photo.png", b"\x89PNG\r\n\x1a\n")
    return path


MINIMAL = """<?xml version="1.0" encoding="utf-8"?>
{doctype}<Project xmlns="urn:QDA-XML:project:1.0" name="{name}">
  <Users><User guid="6B29FC40-CA47-1067-B31D-00DD010662DA" name="a"/></Users>
  <CodeBook><Codes><Code guid="0A1B2C3D-0000-4000-8000-000000000001" name="c" isCodable="true"/></Codes></CodeBook>
  <Sources><TextSource guid="11111111-1111-4111-8111-111111111111" name="s" plainTextPath="internal://s.txt"/></Sources>
</Project>
"""


def archive(path: Path, members: dict[str, bytes], *, symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, "/etc/passwd")
    return path


def minimal(doctype: str = "", name: str = "p") -> bytes:
    return MINIMAL.format(doctype=doctype, name=name).encode("utf-8")
