"""What a requester reads about a collector request: French by default, English on request (§1)."""

from __future__ import annotations

Lang = str

_STATUS: dict[str, tuple[str, str]] = {
    "submitted": ("soumise", "submitted"),
    "in_progress": ("en cours", "in progress"),
    "available": ("disponible", "available"),
    "rejected": ("refusée", "rejected"),
}

_API: dict[str, tuple[str, str]] = {
    "supplier_empty": (
        "Indiquez le nom du fournisseur.",
        "Enter the supplier's name.",
    ),
    "portal_url_invalid": (
        "L'adresse du portail doit commencer par http:// ou https:// et contenir un nom de domaine, "
        "par exemple https://portail.fournisseur.fr.",
        "The portal address must start with http:// or https:// and contain a domain name, "
        "e.g. https://portal.supplier.com.",
    ),
    "portal_url_credentials": (
        "L'adresse du portail ne doit contenir ni identifiant ni mot de passe.",
        "The portal address must not contain a login or a password.",
    ),
    "not_found": ("Demande introuvable.", "Request not found."),
    "reason_required": (
        "Indiquez le motif du refus.",
        "Give the reason for the rejection.",
    ),
    "collector_required": (
        "Indiquez le collecteur qui répond à cette demande.",
        "Give the collector that fulfils this request.",
    ),
    "collector_invalid": (
        "Identifiant de collecteur invalide.",
        "Invalid collector id.",
    ),
    "transition": (
        "Une demande {current} ne peut pas passer à l'état « {target} ».",
        "A request that is {current} cannot become “{target}”.",
    ),
    "changed": (
        "La demande a été modifiée entre-temps : réessayez.",
        "The request changed in the meantime: try again.",
    ),
}


def _pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[1] if lang == "en" else pair[0]


def status_label(status: str, lang: Lang = "fr") -> str:
    return _pick(_STATUS[status], lang) if status in _STATUS else status


def api_message(key: str, lang: Lang = "fr", **values: object) -> str:
    return _pick(_API[key], lang).format(**values)
