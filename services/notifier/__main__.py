from services.notifier.app import build
from shared.settings import NotifierSettings
from shared.standalone import run_standalone

run_standalone(lambda: build(NotifierSettings()))
