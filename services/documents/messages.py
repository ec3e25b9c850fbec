"""What the documents service says to people: API errors in French by default, English on request
(as the other services, §1), and the warnings it adds itself to an invoice's data."""

from __future__ import annotations

from shared.invoice_data import DataWarning

Lang = str

_API: dict[str, tuple[str, str]] = {
    "not_found": (
        "Aucune donnée extraite pour cette facture (inconnue, ou pas encore lue).",
        "No data extracted for this invoice (unknown, or not read yet).",
    ),
}


def api_message(key: str, lang: Lang = "fr") -> str:
    fr, en = _API[key]
    return en if lang == "en" else fr


# Warnings of the service itself (the extractor's own come with their codes): stable codes for
# machines, a message for the accountant or the support team reading `collectors invoices show`.


def file_too_large(size: int, limit: int) -> DataWarning:
    return DataWarning(code="file_too_large", field=None,
                       message=f"The file is {size} bytes, above the {limit}-byte limit of the documents "
                               "service (COLLECTORS_DOCUMENTS_MAX_FILE_BYTES): not read.")


def file_missing(key: str) -> DataWarning:
    return DataWarning(code="file_missing",
                       message=f"The collected file {key} is no longer in the invoice store: not read.")
