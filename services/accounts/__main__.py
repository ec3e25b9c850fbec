from services.accounts.app import build
from shared.settings import AccountsSettings
from shared.standalone import run_standalone

run_standalone(lambda: build(AccountsSettings()))
