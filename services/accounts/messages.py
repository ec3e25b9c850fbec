"""What the pharmacist reads about an account: French by default, English on request (§1, §4)."""

from __future__ import annotations

from shared.errors import ApiErrorCode, CollectionErrorCode
from shared.events import AccountStatus

Lang = str

_STATUS: dict[AccountStatus, tuple[str, str]] = {
    AccountStatus.PENDING: (
        "Collecte activée : la première récupération de vos factures est en cours de préparation.",
        "Collection activated: the first retrieval of your invoices is being prepared.",
    ),
    AccountStatus.COLLECTING: (
        "Récupération de vos factures en cours.",
        "Retrieving your invoices.",
    ),
    AccountStatus.OK: (
        "Collecte opérationnelle : vos factures sont récupérées automatiquement.",
        "Collection is working: your invoices are retrieved automatically.",
    ),
    AccountStatus.MAINTENANCE: (
        "Le portail du fournisseur a changé ; notre équipe adapte le collecteur. "
        "Aucune action n'est nécessaire de votre part.",
        "The supplier's portal changed; our team is adapting the collector. No action needed.",
    ),
    AccountStatus.DELETED: (
        "Collecteur supprimé définitivement.",
        "Collector permanently deleted.",
    ),
}

_ERROR: dict[CollectionErrorCode, tuple[str, str]] = {
    CollectionErrorCode.LOGIN_FAILED: (
        "Identifiant ou mot de passe refusé par le portail du fournisseur. "
        "Mettez à jour vos identifiants dans Collecteurs → Modifier.",
        "The supplier's portal rejected the login or password. "
        "Update your credentials in Collectors → Edit.",
    ),
    CollectionErrorCode.PASSWORD_EXPIRED: (
        "Votre mot de passe a expiré sur le portail du fournisseur. Changez-le sur le portail, "
        "puis mettez-le à jour dans Collecteurs → Modifier.",
        "Your password expired on the supplier's portal. Change it there, then update it in "
        "Collectors → Edit.",
    ),
    CollectionErrorCode.ACCOUNT_LOCKED: (
        "Votre compte est bloqué sur le portail du fournisseur. Débloquez-le auprès du fournisseur, "
        "puis cliquez sur Réessayer.",
        "Your account is locked on the supplier's portal. Have the supplier unlock it, then click Retry.",
    ),
    CollectionErrorCode.ACTION_REQUIRED_ON_SITE: (
        "Le portail du fournisseur vous demande une action (conditions à accepter, formulaire). "
        "Connectez-vous au portail, faites-la, puis cliquez sur Réessayer.",
        "The supplier's portal asks you to act (terms to accept, a form). Log in there, do it, "
        "then click Retry.",
    ),
    CollectionErrorCode.TWO_FACTOR_REQUIRED: (
        "Le portail du fournisseur demande une validation en deux étapes que nous ne pouvons pas "
        "faire à votre place. Désactivez-la pour ce compte si possible, puis cliquez sur Réessayer.",
        "The supplier's portal asks for two-factor validation we cannot do for you. Turn it off "
        "for this account if you can, then click Retry.",
    ),
    CollectionErrorCode.SUPPLIER_UNAVAILABLE: (
        "Le portail du fournisseur est indisponible. Nous réessaierons automatiquement.",
        "The supplier's portal is unavailable. We will retry automatically.",
    ),
    CollectionErrorCode.RATE_LIMITED: (
        "Le portail du fournisseur limite temporairement les connexions. "
        "Nous réessaierons automatiquement.",
        "The supplier's portal is limiting logins for now. We will retry automatically.",
    ),
    CollectionErrorCode.INTERFACE_CHANGED: (
        "Le portail du fournisseur a changé. Nous réessayons et notre équipe est prévenue si "
        "le problème persiste.",
        "The supplier's portal changed. We are retrying and our team is told if it persists.",
    ),
    CollectionErrorCode.DOWNLOAD_FAILED: (
        "Certaines factures n'ont pas pu être téléchargées ; les autres sont récupérées. "
        "Nous réessaierons automatiquement.",
        "Some invoices could not be downloaded; the others were retrieved. We will retry automatically.",
    ),
    CollectionErrorCode.INTERNAL_ERROR: (
        "Un incident technique de notre côté a interrompu la collecte. Nous réessayons et notre "
        "équipe est prévenue.",
        "A technical problem on our side stopped the collection. We are retrying and our team "
        "has been told.",
    ),
}

_API: dict[str, tuple[str, str]] = {
    ApiErrorCode.UNKNOWN_COLLECTOR: (
        "Ce collecteur n'existe pas dans le catalogue.",
        "This collector is not in the catalog.",
    ),
    ApiErrorCode.TOO_MANY_ACCOUNTS: (
        "Vous avez déjà deux comptes sur ce collecteur : supprimez-en un avant d'en ajouter un autre.",
        "You already have two accounts on this collector: delete one before adding another.",
    ),
    ApiErrorCode.DUPLICATE_ACCOUNT: (
        "Ce compte est déjà enregistré sur ce collecteur.",
        "This account is already registered on this collector.",
    ),
    ApiErrorCode.NOT_FOUND: ("Compte introuvable.", "Account not found."),
    "login_email": (
        "Ce collecteur attend une adresse e-mail comme identifiant.",
        "This collector expects an email address as login.",
    ),
    "login_empty": ("L'identifiant est obligatoire.", "The login is required."),
    "login_invalid": (
        "L'identifiant contient des caractères non autorisés.",
        "The login contains characters that are not allowed.",
    ),
    "password_empty": ("Le mot de passe est obligatoire.", "The password is required."),
    "password_long": ("Le mot de passe est trop long.", "The password is too long."),
    "deleted": (
        "Ce compte a été supprimé définitivement ; ajoutez-le à nouveau si besoin.",
        "This account was permanently deleted; add it again if needed.",
    ),
}


def _pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[1] if lang == "en" else pair[0]


def status_message(status: AccountStatus, error_code: CollectionErrorCode | None, lang: Lang = "fr") -> str:
    if error_code is not None and status in (AccountStatus.ACTION_REQUIRED, AccountStatus.RETRYING):
        return _pick(_ERROR[error_code], lang)
    return _pick(_STATUS.get(status, _STATUS[AccountStatus.PENDING]), lang)


def api_message(key: str, lang: Lang = "fr") -> str:
    return _pick(_API[key], lang)
