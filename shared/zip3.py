"""Restricted three-digit ZIP areas for Safe Harbor, 45 CFR 164.514(b)(2)(i)(B).

The first three digits of a ZIP may be kept only if the area they form has more than 20,000 people
according to "the current publicly available data from the Bureau of the Census"; otherwise they
become "000". Which census is "current" is a compliance decision, so both lists ship and the setting
`RESTRICTED_ZIP3_CENSUS` ("2000" or "2010", default "2010") selects one.

Sources:
- 2000 census, 17 areas: HHS OCR, "Guidance Regarding Methods for De-identification of Protected Health
  Information in Accordance with the HIPAA Privacy Rule" (2012), section 3 (Safe Harbor), which
  lists the 17 ZIP3 areas of 20,000 or fewer people in the 2000 census.
  https://www.hhs.gov/hipaa/for-professionals/special-topics/de-identification/index.html
- 2010 census, 14 areas: U.S. Census Bureau 2010 ZIP Code Tabulation Areas aggregated to three digits;
  the same list Microsoft's Tools-for-Health-Data-Anonymization ships as
  `restrictedZipCodeTabulationAreas` (https://github.com/microsoft/Tools-for-Health-Data-Anonymization).
"""

from __future__ import annotations

from typing import Literal

RESTRICTED_ZIP3_2000: frozenset[str] = frozenset(
    {
        "036", "059", "063", "102", "203", "556", "692", "790", "821",
        "823", "830", "831", "878", "879", "884", "890", "893",
    }
)  # fmt: skip
RESTRICTED_ZIP3_2010: frozenset[str] = frozenset(
    {"036", "059", "102", "203", "205", "369", "556", "692", "821", "823", "878", "879", "884", "893"}
)

Census = Literal["2000", "2010"]


def restricted_zip3(census: Census) -> frozenset[str]:
    return RESTRICTED_ZIP3_2000 if census == "2000" else RESTRICTED_ZIP3_2010


def zip3(postal_code: str, census: Census) -> str:
    """The Safe Harbor form of a US ZIP: its first three digits, or "000" for a restricted area."""
    head = postal_code.strip()[:3]
    if len(head) != 3 or not head.isdigit() or not head.isascii():
        return "000"  # not a ZIP we can generalise safely: suppress it
    return "000" if head in restricted_zip3(census) else head
