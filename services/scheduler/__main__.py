from services.scheduler.app import build
from shared.settings import SchedulerSettings
from shared.standalone import run_standalone

run_standalone(lambda: build(SchedulerSettings()))
