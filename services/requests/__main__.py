from services.requests.app import build
from shared.settings import Settings
from shared.standalone import run_standalone

run_standalone(lambda: build(Settings()))
