# ruff: noqa: E501  (one fixture paragraph per line)
"""The text of the fixture report (fictional): headings and paragraphs, shared by the PDF and
the .docx generators and by the tests that check what the loaders read back."""

TITLE = "Lake Verrin Water Quality Review 2025"
RUNNING_HEADER = "Lake Verrin Water Quality Review 2025 · Northfold Basin Authority"
RUNNING_FOOTER = "Internal report NBA-WQ-17"

# (kind, text): "h" a heading, "p" a paragraph
SECTIONS: list[tuple[str, str]] = [
    ("h", "Summary"),
    (
        "p",
        "The Northfold Basin Authority sampled Lake Verrin at fourteen monitoring stations between March and October 2025. Overall water quality improved compared with the previous season, but phosphorus concentrations in the eastern inlet remained above the regional target for most of the summer. This review summarises the sampling programme, the laboratory methods, the results for each parameter and the recommendations adopted by the technical committee.",
    ),
    (
        "p",
        "The most important change this year was the commissioning of the Harrowgate constructed wetland, which now intercepts agricultural drainage from the Tolley catchment before it reaches the lake. Early measurements suggest that the wetland retains roughly a third of the dissolved phosphorus that enters it during dry weather.",
    ),
    ("h", "Sampling programme"),
    (
        "p",
        "Samples were collected every second Tuesday from a survey boat, always between eight and eleven in the morning to limit the effect of daily temperature changes. At each station the crew recorded water temperature, dissolved oxygen and conductivity with a calibrated multiparameter sonde, and filled two bottles for laboratory analysis at a depth of half a metre.",
    ),
    (
        "p",
        "Station V7, near the outflow weir, was sampled weekly instead of fortnightly because the regional drinking-water intake lies two kilometres downstream. Station V12 could not be reached in August while the access jetty was rebuilt, so its August values are missing from every table in this report.",
    ),
    (
        "p",
        "Field blanks and duplicate samples were taken on ten percent of sampling days. The duplicates agreed within eight percent for total phosphorus and within five percent for nitrate, which the committee considered acceptable for a monitoring programme of this size.",
    ),
    ("h", "Laboratory methods"),
    (
        "p",
        "Total phosphorus was measured by the ascorbic acid method after persulfate digestion, with a reporting limit of five micrograms per litre. Nitrate was measured by ion chromatography. Chlorophyll a was extracted in ninety percent acetone and measured by fluorometry, and cyanobacterial cell counts were made by microscopy on preserved samples from the four bathing stations.",
    ),
    (
        "p",
        "All analyses were carried out by the Calloway Environmental Laboratory, which holds accreditation for every method listed above. Samples reached the laboratory within six hours of collection and were kept at four degrees Celsius during transport.",
    ),
    ("h", "Results"),
    (
        "p",
        "The mean total phosphorus concentration across all stations was twenty-three micrograms per litre, down from twenty-nine in 2024. The eastern inlet station V3 remained the worst affected, with a summer mean of forty-one micrograms per litre and a single peak of seventy-eight micrograms per litre after the storm of the ninth of July.",
    ),
    (
        "p",
        "Dissolved oxygen fell below four milligrams per litre in the bottom water of the deep western basin from late July until the autumn turnover in the first week of October. No oxygen depletion was recorded at the shallower stations, where wind mixing kept the water column well aerated throughout the season.",
    ),
    (
        "p",
        "Cyanobacteria exceeded the bathing alert level of twenty thousand cells per millilitre on three occasions, all at Kestle Beach. The beach was closed to swimming for eleven days in total. Microcystin concentrations stayed below the drinking-water guideline at the outflow intake on every sampling day.",
    ),
    (
        "p",
        "Water clarity, measured with a Secchi disc, averaged three point two metres, the best value since monitoring began in 2009. The committee attributes the improvement mainly to lower algal biomass in spring, when chlorophyll a stayed below six micrograms per litre at every station.",
    ),
    ("h", "Recommendations"),
    (
        "p",
        "The technical committee adopted four recommendations. First, a second constructed wetland should be designed for the Brannock stream, the largest untreated inflow to the eastern basin. Second, sampling at station V3 should become weekly from May to September so that storm-driven phosphorus pulses are captured.",
    ),
    (
        "p",
        "Third, the cyanobacteria warning signs at Kestle Beach should be replaced with signs that show the date of the latest sample. Fourth, the authority should publish the raw monitoring data every month on its website instead of once a year, so that anglers, swimmers and the drinking-water operator can follow conditions during the season.",
    ),
    (
        "p",
        "The committee estimated the cost of the Brannock wetland at one point four million euros, to be shared between the basin authority and the regional agriculture fund. Construction could start in the spring of 2027 if the planning application is approved next year.",
    ),
]
