import os

from services.documents.app import DocumentsSettings, build
from shared.standalone import run_standalone

settings = DocumentsSettings()
os.nice(settings.documents_niceness)  # its own process only: see DocumentsSettings.documents_niceness
run_standalone(lambda: build(settings))
