"""What the pharmacist reads in a notification: French by default, English on request (§1, §8)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import CollectionErrorCode

Lang = str


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


# For each user-fixable error: (what happened, what to do), each as (French, English).
_FIXABLE: dict[CollectionErrorCode, tuple[tuple[str, str], tuple[str, str]]] = {
    CollectionErrorCode.LOGIN_FAILED: (
        ("le portail du fournisseur a refusé l'identifiant ou le mot de passe",
         "the supplier's portal rejected the login or password"),
        ("Mettez à jour votre mot de passe dans Collecteurs → Modifier : la collecte reprendra "
         "aussitôt.",
         "Update your password in Collectors → Edit: collection resumes at once."),
    ),
    CollectionErrorCode.PASSWORD_EXPIRED: (
        ("votre mot de passe a expiré sur le portail du fournisseur",
         "your password expired on the supplier's portal"),
        ("Changez-le sur le portail du fournisseur, puis mettez à jour votre mot de passe dans "
         "Collecteurs → Modifier : la collecte reprendra aussitôt.",
         "Change it on the supplier's portal, then update your password in Collectors → Edit: "
         "collection resumes at once."),
    ),
    CollectionErrorCode.ACCOUNT_LOCKED: (
        ("votre compte est bloqué sur le portail du fournisseur",
         "your account is locked on the supplier's portal"),
        ("Faites-le débloquer par le fournisseur, puis cliquez sur Réessayer dans Collecteurs. "
         "D'ici là, nous ne tentons plus de connexion pour ne pas prolonger le blocage.",
         "Have the supplier unlock it, then click Retry in Collectors. Until then we make no login "
         "attempt, so as not to prolong the lock."),
    ),
    CollectionErrorCode.ACTION_REQUIRED_ON_SITE: (
        ("le portail du fournisseur vous demande une action (conditions à accepter, formulaire à "
         "remplir)",
         "the supplier's portal asks you to act (terms to accept, a form to fill in)"),
        ("Connectez-vous au portail du fournisseur, faites ce qui est demandé, puis cliquez sur "
         "Réessayer dans Collecteurs.",
         "Log in to the supplier's portal, do what it asks, then click Retry in Collectors."),
    ),
    CollectionErrorCode.TWO_FACTOR_REQUIRED: (
        ("le portail du fournisseur demande une validation en deux étapes que nous ne pouvons pas "
         "faire à votre place",
         "the supplier's portal asks for a two-step verification we cannot do for you"),
        ("Désactivez si possible cette validation pour ce compte sur le portail du fournisseur, "
         "puis cliquez sur Réessayer dans Collecteurs.",
         "If you can, turn this verification off for this account on the supplier's portal, then "
         "click Retry in Collectors."),
    ),
}

_GENERIC: tuple[tuple[str, str], tuple[str, str]] = (
    ("la collecte de vos factures est bloquée", "the collection of your invoices is blocked"),
    ("Ouvrez Collecteurs pour voir le détail et corriger la situation.",
     "Open Collectors to see the details and fix it."),
)

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
    "webhook_too_long": (
        "L'adresse du webhook est trop longue.",
        "The webhook address is too long.",
    ),
}


def _pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[1] if lang == "en" else pair[0]


def _account(login: str, lang: Lang) -> str:
    if lang == "en":
        return f"the account “{login}”" if login else "your account"
    return f"le compte « {login} »" if login else "votre compte"


def _invoices(collector: str, lang: Lang) -> str:
    if lang == "en":
        return f"your {collector} invoices" if collector else "your invoices"
    return f"vos factures {collector}" if collector else "vos factures"


def _title(prefix: str, collector: str, login: str) -> str:
    parts = [p for p in (collector, login) if p]
    return f"{prefix} – {', '.join(parts)}" if parts else prefix


def action_required(code: CollectionErrorCode | None, login: str, collector: str,
                    lang: Lang = "fr") -> Rendered:
    """An account changed into ``action_required``: say what happened and what to do."""
    problem, action = _FIXABLE.get(code, _GENERIC) if code is not None else _GENERIC
    if lang == "en":
        subject = _title("Action required", collector, login)
        body = (f"Hello,\n\nWe can no longer retrieve {_invoices(collector, lang)} for "
                f"{_account(login, lang)}: {_pick(problem, lang)}.\n\n{_pick(action, lang)}\n\n"
                "Until then, collection for this account is paused.")
    else:
        subject = _title("Action requise", collector, login)
        body = (f"Bonjour,\n\nNous ne pouvons plus récupérer {_invoices(collector, lang)} pour "
                f"{_account(login, lang)} : {_pick(problem, lang)}.\n\n{_pick(action, lang)}\n\n"
                "D'ici là, la collecte de ce compte est en pause.")
    return Rendered(subject, body)


def recovered(login: str, collector: str, lang: Lang = "fr") -> Rendered:
    """An account is collecting again after a problem."""
    if lang == "en":
        return Rendered(
            _title("Collection restored", collector, login),
            f"Good news: the collection of {_invoices(collector, lang)} for {_account(login, lang)} "
            "works again. Invoices are being retrieved; no action is needed.",
        )
    return Rendered(
        _title("Collecte rétablie", collector, login),
        f"Bonne nouvelle : la collecte de {_invoices(collector, lang)} pour {_account(login, lang)} "
        "fonctionne à nouveau. Les factures sont en cours de récupération ; aucune action n'est "
        "nécessaire.",
    )


def api_message(key: str, lang: Lang = "fr", **values: object) -> str:
    return _pick(_API[key], lang).format(**values)
