from shared.standalone import run_standalone

from services.accounts.app import build
from shared.settings import AccountsSettings

run_standalone(lambda: build(AccountsSettings()))
