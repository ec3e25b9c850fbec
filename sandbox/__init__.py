"""A local fake supplier portal to develop, test and benchmark collectors against."""

from sandbox.data import SandboxDocument, documents_for
from sandbox.pdf import pdf_for
from sandbox.portal import SandboxPortal, create_app, start_portal

__all__ = ["SandboxDocument", "SandboxPortal", "create_app", "documents_for", "pdf_for", "start_portal"]
