"""A corpus of synthetic PHI ("canaries") and the search that proves none of it leaked.

Every value is invented for tests (example.org mail, 555-01xx phones, documentation IP ranges). The
distinctive parts of composite values (a surname, a street name) are canaries of their own, so a
partial leak is caught too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, quote_plus


@dataclass(frozen=True)
class Canary:
    kind: str
    value: str

    def forms(self) -> set[str]:
        """Raw, URL-encoded (both flavours) and JSON-escaped (ASCII and not) forms."""
        return {
            self.value,
            quote(self.value, safe=""),
            quote_plus(self.value, safe=""),
            json.dumps(self.value)[1:-1],
            json.dumps(self.value, ensure_ascii=False)[1:-1],
        }


CANARIES: tuple[Canary, ...] = (
    Canary("name", "Zebulon Quartermaine"),
    Canary("name.given", "Zebulon"),
    Canary("name.family", "Quartermaine"),
    Canary("name.apostrophe", "Siobhan O'Dowdall-Reyes"),
    Canary("name.family", "Dowdall"),
    Canary("ssn", "512-34-6789"),
    Canary("ssn.digits", "512346789"),
    Canary("mrn", "MRN-00482913"),
    Canary("mrn.bare", "A7731942"),
    Canary("dob.iso", "1961-02-14"),
    Canary("dob.us", "02/14/1961"),
    Canary("dob.long", "February 14, 1961"),
    Canary("phone", "(617) 555-0134"),
    Canary("phone.dashed", "617-555-0134"),
    Canary("email", "zebulon.quartermaine@example.org"),
    Canary("address", "4417 Quillfeather Lane"),
    Canary("address.street", "Quillfeather"),
    Canary("zip4", "01109-2231"),
    Canary("insurance.member_id", "XQH847362915"),
    Canary("ip", "198.51.100.77"),
    Canary("note", 'Pt reports "intermittent chest tightness" after climbing stairs; denies syncope.'),
    Canary("note.fragment", "intermittent chest tightness"),
    Canary("secret.bearer", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJlLWNhbmFyeQ"),
    Canary("secret.function_key", "fkey-canary-9f8e7d6c5b4a"),
    Canary("secret.apim_key", "apimkey-canary-0a1b2c3d4e5f"),
    Canary("secret.client_principal", "eyJjbGFpbXMiOiJjYW5hcnktcHJpbmNpcGFsIn0="),
    Canary("secret.cookie", "session=cookie-canary-77aa"),
)

NAME, SSN, MRN, MRN_BARE, DOB, PHONE, EMAIL, ADDRESS, ZIP4, MEMBER_ID, IP, NOTE = (
    "Zebulon Quartermaine",
    "512-34-6789",
    "MRN-00482913",
    "A7731942",
    "1961-02-14",
    "(617) 555-0134",
    "zebulon.quartermaine@example.org",
    "4417 Quillfeather Lane, Springfield, MA 01109-2231",
    "01109-2231",
    "XQH847362915",
    "198.51.100.77",
    'Pt reports "intermittent chest tightness" after climbing stairs; denies syncope.',
)
SECRETS = {
    "Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJlLWNhbmFyeQ",
    "x-functions-key": "fkey-canary-9f8e7d6c5b4a",
    "Ocp-Apim-Subscription-Key": "apimkey-canary-0a1b2c3d4e5f",
    "x-ms-client-principal": "eyJjbGFpbXMiOiJjYW5hcnktcHJpbmNpcGFsIn0=",
    "Cookie": "session=cookie-canary-77aa",
}
# One sentence holding every canary: what a careless developer would put in an exception message.
EVERYTHING = (
    f"patient {NAME} (Siobhan O'Dowdall-Reyes) ssn {SSN} / 512346789 {MRN} {MRN_BARE} dob {DOB} "
    f"02/14/1961 February 14, 1961 phone {PHONE} 617-555-0134 email {EMAIL} lives at {ADDRESS} "
    f"member {MEMBER_ID} from {IP} note: {NOTE}"
)


def find_canaries(blobs: Iterable[bytes | str], canaries: Iterable[Canary] = CANARIES) -> list[str]:
    """`kind: form` for every canary form found in any blob (bytes are decoded as UTF-8)."""
    texts = [b.decode("utf-8", errors="replace") if isinstance(b, bytes) else b for b in blobs]
    hits: list[str] = []
    for canary in canaries:
        for form in canary.forms():
            if any(form in text for text in texts):
                hits.append(f"{canary.kind}: {form!r}")
                break
    return hits
