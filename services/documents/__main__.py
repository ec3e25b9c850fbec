from services.documents.app import DocumentsSettings, build
from shared.standalone import run_standalone

run_standalone(lambda: build(DocumentsSettings()))
