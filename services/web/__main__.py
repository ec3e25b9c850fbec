"""``python -m services.web``: the web service alone, on COLLECTORS_WEB_HOST:COLLECTORS_WEB_PORT."""

from services.web.app import main

main()
