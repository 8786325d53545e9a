"""Build ``corpus/verrin-field-manual.docx``: a Word file with a title, headings at two levels,
paragraphs, a bulleted list and a table (python-docx's default template styles).

    python tests/data/real_docs/make/make_docx.py
"""

from __future__ import annotations

from pathlib import Path

import docx

OUT = Path(__file__).resolve().parents[1] / "corpus" / "verrin-field-manual.docx"


def main() -> None:
    d = docx.Document()
    d.add_heading("Verrin Survey Boat Field Manual", level=0)
    d.add_heading("Before leaving the jetty", level=1)
    d.add_paragraph(
        "The skipper checks the weather forecast and cancels the trip when gusts above "
        "thirty knots are expected on Lake Verrin. Every crew member wears a lifejacket "
        "from the moment they step onto the jetty."
    )
    d.add_heading("Equipment checklist", level=2)
    d.add_paragraph("Load the multiparameter sonde and its spare battery pack", style="List Bullet")
    d.add_paragraph("Load two cool boxes with frozen ice packs", style="List Bullet")
    d.add_paragraph("Load the Secchi disc on its marked rope", style="List Bullet")
    d.add_heading("Sample handling", level=1)
    d.add_paragraph(
        "Bottles are labelled with the station code and the time of sampling before they "
        "are filled. Samples for cyanobacteria counts are preserved with Lugol's iodine on "
        "the boat, immediately after collection."
    )
    d.add_heading("Station coordinates", level=2)
    table = d.add_table(rows=1, cols=3)
    for cell, text in zip(table.rows[0].cells, ["Station", "Latitude", "Longitude"], strict=True):
        cell.text = text
    for row in [("V3", "52.4411", "-1.9012"), ("V7", "52.4187", "-1.9530")]:
        cells = table.add_row().cells
        for cell, text in zip(cells, row, strict=True):
            cell.text = text
    d.add_paragraph(
        "If the sonde fails a calibration check, the crew records the failure in the logbook "
        "and samples only for the laboratory that day."
    )
    d.core_properties.title = "Verrin Survey Boat Field Manual"
    d.save(str(OUT))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
