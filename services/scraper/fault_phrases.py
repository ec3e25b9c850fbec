"""What fault pages say, grouped by meaning, in French and English: the data of ``diagnose``.

Patterns are regular expressions matched on folded text (``kit.html.fold``: lower-case, no accents,
single spaces, straight apostrophes). They say what a sentence *means* ("the account is blocked",
"the service is interrupted"), with a few words of slack between its subject and its verb, rather
than one portal's exact wording. ``_`` stands for that slack: a few words within one sentence.
"""

from __future__ import annotations

import re
from typing import Final

_ = r"[^.!?:]{0,60}?"  # up to a few words, within the same sentence


def _patterns(*sources: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(source.replace("{_}", _)) for source in sources)


# --- Captcha: recognised by the widget's markup and scripts, whatever the page says --------------------
# reCAPTCHA (g-recaptcha), hCaptcha (h-captcha), Cloudflare Turnstile (cf-turnstile), and their hosts.
CAPTCHA_MARKERS: Final = re.compile(r"captcha|cf-turnstile|cf-challenge|challenge-form|arkose|funcaptcha")
CAPTCHA_SOURCES: Final = re.compile(r"captcha|turnstile|challenges\.cloudflare\.com|arkoselabs|funcaptcha")
CAPTCHA_TEXT: Final = _patterns(
    r"je ne suis pas un robot", r"i'?\s?a?m not a robot", r"\bcaptcha\b",
    r"(verifi\w*|prouver|confirmer){_}(que )?(vous|tu) (etes|n'etes pas){_}(humain|une personne|un robot)",
    r"verify (that )?you are (a )?human", r"confirm (that )?you(')?(re| are) (a )?human",
    r"(checking|verifying) (if|that|whether) (the site connection is secure|you are (a )?human)",
)

# --- Pushed back for a while: too many attempts or requests (rate_limited) -------------------------------
TOO_MANY: Final = _patterns(
    r"trop (de|grand nombre de) (requetes|demandes|tentatives|essais|connexions|echecs)",
    r"nombre (maximum |maximal )?(de )?(demandes|requetes|tentatives|essais){_}(atteint|depasse)",
    r"too many (failed |unsuccessful |login |sign-?in )*(requests|attempts|tries|logins)",
    r"(rate|request) limit(ed| exceeded| reached)?\b", r"maximum (number of )?(login )?attempts",
)
# What makes a lock temporary: it lifts on its own after a while (then it is a rate limit, not a lock).
TEMPORARY: Final = _patterns(
    r"\b(temporairement|provisoirement|momentanement|temporarily|temporary)\b",
    r"automatiquement (de)?(verrouille|debloque|reactive|retabli)", r"(unlock|unblock)\w* automatically",
    r"automatically (unlocked|unblocked|restored)",
    r"(pendant|durant|dans|d'ici|for|in|after) (les )?\d+ ?(secondes?|minutes?|min|mn|heures?|h|seconds?|hours?)\b",
    r"(wait|patientez|attendez|patienter|attendre){_}(minutes?|seconds?|secondes|heures?|hours?)",
)

# --- The account is locked, suspended or deactivated (account_locked) -----------------------------------
LOCKED: Final = _patterns(
    r"\b(compte|identifiant|utilisateur|abonnement)\b{_}\b(bloque|verrouille|suspendu|desactive|ferme|resilie"
    r"|gele|inactif)e?s?\b",
    r"\bacces\b{_}\b(bloque|verrouille|suspendu|desactive|revoque)e?s?\b",
    r"\b(account|user|login)\b{_}\b(locked|suspended|disabled|deactivated|blocked|on hold|closed|frozen)\b",
    r"\baccess\b{_}\b(suspended|revoked|blocked|locked|disabled)\b",
)

# A suspension that lasts only until the user does something on the site (accepts the terms): not a lock.
UNTIL_ACTION: Final = _patterns(
    r"jusqu'(a|au|aux) (votre |l'|la |leur )?(acceptation|approbation|validation|accord|consentement|signature)",
    r"until (you|they) (have )?(accept|agree|approve|consent|sign|review)", r"until (your )?(acceptance|approval)",
)

# --- The password must be changed (password_expired) ----------------------------------------------------
# Enough on their own: the password ran out.
PASSWORD_EXPIRED: Final = _patterns(
    r"mot de passe{_}\b(a |est |sont )?(expire|perime|arrive a expiration|n'est plus valide)",
    r"(expiration|validite|duree de vie) (de |du )?(votre |ce |du )?mot de passe",
    r"password{_}\b(has |is |have )?(expired|no longer valid|out of date)", r"password expir",
    r"expired password",
)
# A change asked for: taken with a password field on the page (a reset link on a login page is not it).
PASSWORD_CHANGE: Final = _patterns(
    r"(changer|modifier|renouveler|personnaliser|remplacer|definir|choisir|saisir|creer){_}"
    r"(nouveau |votre |le |un |son )+(nouveau )?mot de passe",
    r"mot de passe (provisoire|temporaire|initial)", r"(mise a jour|changement|modification|renouvellement) "
    r"(de |du )?(votre |du )?mot de passe",
    r"mot de passe{_}(doit|doivent) etre (modifie|change|renouvele)",
    r"(change|update|reset|choose|set|create){_}(a |your |the )?new password",
    r"(change|update|renew) (your |the )?password", r"(temporary|initial|one-time) password",
    r"password (change|update) (is )?required",
)
# Fields of a password-change form: the new password and its confirmation.
NEW_PASSWORD_FIELD: Final = re.compile(r"new|nouv|confirm|repe[at]|second|verif|again|retype|mdp2|password2|pwd2")

# --- A one-time code is asked for (two_factor_required) -------------------------------------------------
OTP_TEXT: Final = _patterns(
    r"code (de verification|de securite|d'authentification|de confirmation|a usage unique|unique|temporaire"
    r"|d'acces a usage)", r"code a \d+ chiffres", r"code (recu|envoye|transmis){_}(sms|e-?mail|mail|telephone)",
    r"(verification|authentification|validation|connexion) (en|a) (deux|2) (etapes|facteurs)",
    r"double (authentification|verification)", r"application d'authentification", r"authenticator",
    r"(two|2)[- ](factor|step)", r"\b(2fa|mfa)\b", r"multi-?factor", r"one[- ]time (pass)?code",
    r"verification code", r"security code", r"passcode", r"(texted|sent|emailed) (you )?(a |the )?code",
    r"(we )?(texted|sent a code to) your phone", r"enter (the |your )?\d*-?(digit )?code",
    r"(saisissez|entrez|saisir|entrer|indiquez) (le|ce|votre) code", r"code{_}(sms|texto)",
)
# Inputs meant for a one-time code, by name.
OTP_INPUT_NAMES: Final = re.compile(r"otp|totp|mfa|2fa|one.?time|verif\w*code|code.?(sms|otp|securite|verif)"
                                    r"|txtcode|securitycode|authcode|\botc\b|^code$")

# --- Terms or consent to accept (action_required_on_site) -----------------------------------------------
TERMS_TOPIC: Final = _patterns(
    r"conditions (generales|particulieres|d'utilisation|de vente|d'acces|contractuelles)", r"\bcg[uv]s?\b",
    r"terms (of (use|service|sale)|and conditions|& conditions)", r"\bterms\b", r"\beula\b",
    r"politique de (confidentialite|protection des donnees)", r"privacy (policy|notice)",
    r"(protection|traitement) des donnees", r"data (processing|protection)", r"\b(rgpd|gdpr)\b",
    r"charte (d'utilisation|utilisateur)", r"(contrat|accord|avenant|convention) (de|d'|du)",
    r"agreement", r"addendum", r"consentement", r"\bconsent\b",
)
# Asked to accept: "j'accepte", "I agree", "les approuver", "votre consentement est nécessaire"...
ACCEPT: Final = _patterns(
    r"\b(j'|d')?(accept|approuv|approb|agree|consent|acquiesc)\w*", r"j'ai (bien )?lu", r"i have read",
    r"je reconnais", r"i acknowledge", r"prendre connaissance{_}(et|puis)",
)

# --- The portal is down: maintenance, planned outage, server error (supplier_unavailable) ----------------
MAINTENANCE: Final = _patterns(
    r"\bmaintenance\b{_}\b(en cours|planifiee|programmee|prevue|technique|du site|du systeme|window)",
    r"(en|pour|de|cause de|operation de|travaux de|under|for|scheduled|planned|performing (some )?)"
    r" maintenance\b", r"maintenance (in progress|mode|underway)",
    r"intervention (technique|planifiee|programmee)", r"arret (programme|planifie|technique)",
    r"(interruption|coupure) (de service|programmee|planifiee|temporaire|du service)",
    r"\b(en cours de )?(mise a jour|migration|mise a niveau)\b{_}\b(serveur|site|systeme|plateforme|nos)",
    r"\b(serveur|site|systeme|plateforme)s? (est |sont )?en cours de (mise a jour|migration|maintenance)",
    r"(migration|mise a jour) de (nos|notre|la|l') ?(serveurs?|plateforme|infrastructure|systeme|site)",
    r"(upgrad|migrat|updat)\w* (our|the) (infrastructure|servers?|systems?|platform)",
    r"we('| a)?(ll| will) be back", r"be back (soon|shortly|online)", r"back online (soon|shortly)",
    r"(downtime|outage)",
)
UNAVAILABLE: Final = _patterns(
    r"\b(service|site|portail|extranet|espace|plateforme|serveur|systeme|application|acces|boutique|"
    r"commandes? en ligne)\b{_}\b(indisponible|non disponible|pas disponible|inaccessible|interrompu|ferme"
    r"|hors (ligne|service)|arrete)",
    r"(temporairement|momentanement|provisoirement) (indisponible|inaccessible|interrompu|ferme|hors service)",
    r"service non disponible",
    r"\b(service|site|portal|system|platform|website|server|application)\b{_}\b(unavailable|down|offline)\b",
    r"(temporarily|currently) (unavailable|down|offline|closed)", r"service unavailable",
)
# A heading that says it in one word is enough ("Maintenance", "Site en maintenance").
OUTAGE_HEADLINE: Final = _patterns(r"\bmaintenance\b", r"\b(out of service|hors service)\b")
SERVER_ERROR: Final = _patterns(
    r"erreur (inattendue|interne|technique|serveur|du serveur|d'execution|applicative|systeme|http 5\d\d)",
    r"(probleme|incident|anomalie|difficulte)s? techniques?", r"une anomalie s'est produite",
    r"(unexpected|internal|application|runtime|server|technical) error", r"something went wrong",
    r"technical (problem|issue|difficult)", r"bad gateway", r"gateway time-?out", r"origin (server|is unreachable)",
    r"serveur d'origine", r"\b50[0-4] (error|erreur)", r"(error|erreur) (code )?5\d\d\b",
)

# --- The login form said no (login_failed) --------------------------------------------------------------
BAD_CREDENTIALS: Final = _patterns(
    r"mot de passe (incorrect|errone|invalide)", r"identifiants? (ou mot de passe )?(incorrects?|invalides?)",
    r"(invalid|incorrect|wrong) (credentials|password|username or password|login)",
)
