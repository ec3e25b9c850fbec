"""The e-invoice extractor (issue 14): Factur-X / ZUGFeRD / XRechnung PDFs and CII / UBL XML to
``shared.invoice_data`` models, with arithmetic and schema checks and reconciliation with the
portal's list. Pure: no NATS, no I/O beyond its arguments (``extract_isolated`` forks a child).
"""

from services.documents.einvoice.extract import extract
from services.documents.einvoice.isolated import extract_isolated, shutdown_workers
from services.documents.einvoice.limits import DEFAULT_LIMITS, Limits
from services.documents.einvoice.reconcile import reconcile

__all__ = ["DEFAULT_LIMITS", "Limits", "extract", "extract_isolated", "reconcile", "shutdown_workers"]
