from services.scraper.app import build
from shared.settings import ScraperSettings
from shared.standalone import run_standalone

run_standalone(lambda: build(ScraperSettings()))
