"""What the pharmacist reads: notifications rendered from the jinja2 templates in ``templates/<lang>/``
(French by default, English on request, §1, §8), and the API's validation messages.

A notification template defines two macros, ``subject()`` and ``body()``; shared phrases (what each
error means, what to do about it) live in ``templates/<lang>/_texts.j2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from shared.errors import CollectionErrorCode

Lang = str
LANGS = ("fr", "en")
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


@cache
def _environment() -> jinja2.Environment:
    # Plain text (email, webhook JSON, in-app): nothing to escape. StrictUndefined makes a template
    # that names a missing value fail loudly instead of printing a blank.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=False)


def render(kind: str, lang: Lang = "fr", **values: Any) -> Rendered:
    """Render the ``kind`` notification in ``lang`` (French when the language is unknown)."""
    lang = lang if lang in LANGS else "fr"
    module = _environment().get_template(f"{lang}/{kind}.j2").make_module(values)
    # The macros a notification template must define (jinja2 exposes them as attributes).
    subject = " ".join(str(getattr(module, "subject")()).split())  # noqa: B009
    return Rendered(subject, str(getattr(module, "body")()).strip())  # noqa: B009


def _code(code: CollectionErrorCode | str | None) -> str | None:
    return str(code.value) if isinstance(code, CollectionErrorCode) else code


def action_required(code: CollectionErrorCode | str | None, login: str, collector: str,
                    lang: Lang = "fr") -> Rendered:
    """An account changed into ``action_required``: say what happened and what to do."""
    return render("action_required", lang, code=_code(code), login=login, collector=collector)


def action_required_reminder(code: CollectionErrorCode | str | None, login: str, collector: str, days: int,
                             lang: Lang = "fr") -> Rendered:
    return render("action_required_reminder", lang, code=_code(code), login=login, collector=collector,
                  days=days, hours=days * 24)


def transient_failure(code: CollectionErrorCode | str | None, login: str, collector: str, hours: int,
                      lang: Lang = "fr", *, reminder: bool = False) -> Rendered:
    kind = "transient_failure_reminder" if reminder else "transient_failure"
    return render(kind, lang, code=_code(code), login=login, collector=collector, hours=hours,
                  days=hours // 24)


def recovered(login: str, collector: str, lang: Lang = "fr") -> Rendered:
    """An account is collecting again after a problem the pharmacy was told about."""
    return render("recovered", lang, login=login, collector=collector)


def incident_declared(code: CollectionErrorCode | str | None, collector: str, logins: Sequence[str],
                      lang: Lang = "fr") -> Rendered:
    return render("incident_declared", lang, code=_code(code), collector=collector, logins=list(logins))


def incident_resolved(collector: str, logins: Sequence[str], lang: Lang = "fr") -> Rendered:
    return render("incident_resolved", lang, collector=collector, logins=list(logins))


def request_available(supplier: str, portal: str, name: str, login_kind: str | None,
                      lang: Lang = "fr") -> Rendered:
    return render("request_available", lang, supplier=supplier, portal=portal, name=name,
                  login_kind=login_kind or "identifier")


def request_rejected(supplier: str, reason: str, lang: Lang = "fr") -> Rendered:
    return render("request_rejected", lang, supplier=supplier, reason=reason)


# --- API messages ----------------------------------------------------------------------------------

_API: dict[str, tuple[str, str]] = {
    "emails_too_many": (
        "Vous pouvez indiquer au plus {max} adresses e-mail.",
        "You can give at most {max} email addresses.",
    ),
    "email_empty": (
        "Une des adresses e-mail est vide : complétez-la ou retirez-la.",
        "One of the email addresses is empty: fill it in or remove it.",
    ),
    "email_invalid": (
        "L'adresse e-mail « {value} » n'est pas valide.",
        "The email address “{value}” is not valid.",
    ),
    "webhook_invalid": (
        "L'adresse du webhook doit commencer par http:// ou https:// et contenir un nom de domaine, "
        "par exemple https://exemple.fr/notifications.",
        "The webhook address must start with http:// or https:// and contain a domain name, "
        "e.g. https://example.com/notifications.",
    ),
    "webhook_credentials": (
        "L'adresse du webhook ne doit contenir ni identifiant ni mot de passe.",
        "The webhook address must not contain a login or a password.",
    ),
    "secret_without_webhook": (
        "Indiquez d'abord l'adresse du webhook : le secret sert à signer ses appels.",
        "Set the webhook address first: the secret signs its calls.",
    ),
    "webhook_too_long": (
        "L'adresse du webhook est trop longue.",
        "The webhook address is too long.",
    ),
}


def api_message(key: str, lang: Lang = "fr", **values: object) -> str:
    french, english = _API[key]
    return (english if lang == "en" else french).format(**values)
