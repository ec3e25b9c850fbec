"""What a portal shows instead of the invoices when something is in the way (the fault pages).

Worded like real French supplier portals; each style wraps these bodies in its own layout. Collectors
never look for these pages by name: the scraper framework recognises them, as it must on real portals.
"""

from __future__ import annotations

from sandbox.faults import RETRY_AFTER_S, Fault

MAINTENANCE = """<section class="notice" id="maintenance">
<h2>Maintenance en cours</h2>
<p>Notre portail est momentanément indisponible pour cause de maintenance programmée.
Merci de réessayer dans quelques heures.</p>
</section>"""

SERVER_ERROR = """<section class="notice" id="server-error">
<h2>Erreur 500</h2>
<p>Une erreur technique est survenue. Nos équipes ont été prévenues.</p>
</section>"""

RATE_LIMITED = f"""<section class="notice" id="rate-limit">
<h2>Trop de requêtes</h2>
<p>Vous avez effectué trop de requêtes. Réessayez dans {RETRY_AFTER_S // 60} minutes.</p>
</section>"""

CAPTCHA = """<section class="challenge">
<h2>Vérification de sécurité</h2>
<p>Pour continuer, confirmez que vous n'êtes pas un robot.</p>
<form method="post" action="#">
<div class="captcha-box" id="captcha" data-sitekey="sandbox-0000">
<label><input type="checkbox" name="captcha_response"> Je ne suis pas un robot</label>
</div>
<button type="submit">Continuer</button>
</form>
</section>"""

PASSWORD_EXPIRED = """<section class="account-step">
<h2>Mot de passe expiré</h2>
<p>Votre mot de passe a expiré. Pour des raisons de sécurité, choisissez-en un nouveau.</p>
<form method="post" action="#">
<p><label>Nouveau mot de passe <input type="password" name="new_password" autocomplete="new-password"></label></p>
<p><label>Confirmation <input type="password" name="new_password_confirm" autocomplete="new-password"></label></p>
<button type="submit">Modifier mon mot de passe</button>
</form>
</section>"""

TERMS = """<section class="account-step">
<h2>Conditions générales d'utilisation</h2>
<p>Nos conditions générales d'utilisation évoluent. Vous devez les lire et les accepter pour accéder
à votre espace.</p>
<form method="post" action="#">
<p><label><input type="checkbox" name="accept_terms" required> J'ai lu et j'accepte les conditions
générales d'utilisation</label></p>
<button type="submit">Valider</button>
</form>
</section>"""

OTP = """<section class="account-step">
<h2>Vérification en deux étapes</h2>
<p>Saisissez le code de vérification à 6 chiffres envoyé par SMS au 06 •• •• •• 42.</p>
<form method="post" action="#">
<p><input type="text" name="otp" inputmode="numeric" autocomplete="one-time-code" maxlength="6"></p>
<button type="submit">Valider</button>
</form>
</section>"""

BODIES: dict[Fault, str] = {
    Fault.MAINTENANCE: MAINTENANCE,
    Fault.SERVER_ERROR: SERVER_ERROR,
    Fault.RATE_LIMITED: RATE_LIMITED,
    Fault.CAPTCHA: CAPTCHA,
    Fault.PASSWORD_EXPIRED: PASSWORD_EXPIRED,
    Fault.TERMS: TERMS,
    Fault.OTP: OTP,
}

TITLES: dict[Fault, str] = {
    Fault.MAINTENANCE: "Maintenance",
    Fault.SERVER_ERROR: "Erreur",
    Fault.RATE_LIMITED: "Trop de requêtes",
    Fault.CAPTCHA: "Vérification",
    Fault.PASSWORD_EXPIRED: "Mot de passe expiré",
    Fault.TERMS: "Conditions générales",
    Fault.OTP: "Vérification en deux étapes",
}
