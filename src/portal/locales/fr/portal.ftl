# Portail ssprd — français.

product-name = Mot de passe en libre-service
skip-to-content = Aller au contenu principal
language = Langue
language-change = Appliquer
problem-title = Il y a un problème
problem-page-title = Une erreur s’est produite
back-home = Retour au début
continue = Continuer
start-over = Recommencer

home-title = Comment pouvons-nous vous aider ?
home-intro = Réinitialisez vous-même un mot de passe oublié ou déverrouillez votre compte, avec les méthodes que vous avez enregistrées.
home-reset = J’ai oublié mon mot de passe
home-reset-detail = Prouvez votre identité et choisissez un nouveau mot de passe.
home-unlock = Mon compte est verrouillé
home-unlock-detail = Prouvez votre identité et déverrouillez-le, en gardant votre mot de passe.

start-title-reset = Réinitialiser votre mot de passe
start-title-unlock = Déverrouiller votre compte
start-intro = Saisissez votre identifiant. Vous prouverez ensuite votre identité avec les méthodes enregistrées.
login-label = Identifiant
login-hint = Le nom avec lequel vous vous connectez, par exemple jsmith.

verify-title = Prouvez votre identité
verify-intro = { $required ->
    [one] Validez l’une des méthodes ci-dessous.
   *[other] Validez { $required } des méthodes ci-dessous ({ $verified } jusqu’ici).
  }
method-security_questions = Questions de sécurité
method-email = E-mail
method-mobile_sms = SMS
method-mobile_voice = Appel sur votre mobile
method-office_voice = Appel sur votre téléphone de bureau
method-authenticator_code = Application d’authentification
code-to = Nous enverrons un code à { $hint }.
send-code = Envoyer le code
call-instead = M'appeler avec le code au lieu d'envoyer un SMS
send-again = Envoyer un nouveau code
code-label = Code
code-hint = Le code à { $length } chiffres que nous vous avons envoyé.
verify-code = Vérifier le code
verify-answers = Vérifier les réponses
authenticator-label = Le code à 6 chiffres affiché maintenant par votre application d’authentification

password-title = Choisir un nouveau mot de passe
password-intro = Nouveau mot de passe pour { $login }.
rules-title = Votre nouveau mot de passe doit
rule-min-length = comporter au moins { $n } caractères
rule-complexity = mélanger les types de caractères (majuscules, minuscules, chiffres, symboles) comme l’exige votre organisation
rule-history = différer de vos { $n } derniers mots de passe
rule-no-name = ne contenir ni votre identifiant ni votre nom
rule-not-common = ne pas être un mot de passe courant
rule-not-breached = ne figurer dans aucune liste de mots de passe divulgués
rules-directory-more = Votre compte peut avoir ses propres règles ; si le nouveau mot de passe en enfreint une, nous vous dirons laquelle.
rule-strength = être difficile à deviner (force { $n } sur 4 ou plus)
new-password = Nouveau mot de passe
confirm-password = Confirmer le nouveau mot de passe
unlock-too = Déverrouiller aussi mon compte s’il est verrouillé
set-password = Définir le nouveau mot de passe

done-title = C’est fait
done-reset = Votre mot de passe a été modifié. Connectez-vous avec le nouveau.
done-unlocked-too = Votre compte est aussi déverrouillé.
done-unlock = Votre compte est déverrouillé. Connectez-vous avec votre mot de passe actuel.

notice-code-sent = Nous avons envoyé un code à { $hint }. Il peut mettre une minute à arriver.
notice-one-more = C’est validé. Validez maintenant une méthode de plus.

reason-OTHER = La demande n’a pas pu aboutir ({ $reason }). Réessayez ou contactez le support.
reason-FORM_EXPIRED = Votre navigateur a envoyé ce formulaire sans son cookie de session (les cookies sont peut-être désactivés, ou le navigateur a été fermé). Autorisez les cookies pour ce site et recommencez.
reason-NOT_FOUND = Cette page n’existe pas.
reason-NOT_VERIFIED = Ce n’est pas correct. Vérifiez et réessayez.
reason-PASSWORDS_DIFFER = Les deux mots de passe ne sont pas identiques.
reason-CLIENT_RATE_LIMITED = Trop de demandes depuis votre réseau. Attendez une minute et réessayez.
reason-USERNAME_REQUIRED = Saisissez votre identifiant.
reason-USERNAME_INVALID = Cet identifiant n’est pas valide.
reason-INVALID_CREDENTIALS = L’identifiant ou le mot de passe est incorrect.
reason-FLOW_INVALID = Cette démarche a expiré ou est terminée. Recommencez.
reason-METHODS_NOT_VERIFIED = Validez d’abord les méthodes.
reason-METHOD_NOT_ENABLED = Cette méthode n’est pas disponible ici.
reason-METHOD_NOT_AVAILABLE = Cette méthode n’est pas disponible pour cette démarche.
reason-METHOD_ALREADY_VERIFIED = Cette méthode est déjà validée.
reason-WRONG_QUESTIONS = Répondez aux questions affichées, une fois chacune.
reason-NOT_A_CODE_METHOD = Les codes ne sont envoyés que par e-mail et téléphone.
reason-DELIVERY_UNAVAILABLE = Le code ne peut pas être envoyé pour l’instant. Réessayez plus tard ou utilisez une autre méthode.
reason-DELIVERY_REFUSED = Le code ne peut pas être remis à cette adresse ou à ce numéro. Utilisez une autre méthode.
reason-DELIVERY_NOT_CONFIGURED = Les codes ne peuvent pas être envoyés de cette façon ici. Utilisez une autre méthode.
reason-TOO_MANY_CODES = Trop de codes ont été envoyés pendant cette session. Recommencez plus tard.
reason-CODE_INVALID = Le code est incorrect.
reason-CODE_EXPIRED = Le code a expiré ou a été essayé trop souvent. Demandez-en un nouveau.
reason-TOO_MANY_ATTEMPTS = Trop de réponses fausses. Recommencez.
reason-SSPR_BLOCKED = Le libre-service est bloqué pour ce compte après trop de réponses ou de codes erronés. Il sera de nouveau possible dans { $minutes ->
    [one] une minute
   *[other] { $minutes } minutes
  }, ou le support peut lever le blocage.
reason-PASSWORD_REQUIRED = Saisissez un nouveau mot de passe.
reason-PASSWORD_INVALID_CHARACTER = Le nouveau mot de passe contient un caractère non autorisé.
reason-PASSWORD_TOO_SHORT = Le nouveau mot de passe doit comporter au moins { $n } caractères.
reason-PASSWORD_TOO_LONG = Le nouveau mot de passe doit comporter au plus { $n } caractères.
reason-PASSWORD_BANNED = Le nouveau mot de passe contient un mot interdit ici.
reason-PASSWORD_COMMON = Le nouveau mot de passe est l’un des plus courants, ou proche de l’un d’eux. Choisissez-en un autre.
reason-PASSWORD_CONTAINS_NAME = Le nouveau mot de passe ne doit contenir ni votre identifiant ni votre nom.
reason-PASSWORD_TOO_WEAK = Le nouveau mot de passe est trop facile à deviner. Allongez-le ou rendez-le moins prévisible.
reason-PASSWORD_BREACHED = Le nouveau mot de passe figure dans une liste de mots de passe divulgués. Choisissez-en un autre.
directory-PASSWORD_TOO_SHORT = L’annuaire a refusé le nouveau mot de passe : il est trop court.
directory-PASSWORD_TOO_LONG = L’annuaire a refusé le nouveau mot de passe : il est trop long.
directory-PASSWORD_IN_HISTORY = L’annuaire a refusé le nouveau mot de passe : vous l’avez déjà utilisé. Choisissez-en un que vous n’avez pas encore utilisé.
directory-PASSWORD_TOO_SIMPLE = L’annuaire a refusé le nouveau mot de passe : il est trop simple.
directory-PASSWORD_TOO_YOUNG = Votre mot de passe vient d’être changé ; l’annuaire permettra le prochain changement plus tard.
directory-PASSWORD_POLICY_NOT_MET = L’annuaire a refusé le nouveau mot de passe : il ne respecte pas la politique (longueur, complexité ou historique).
directory-PASSWORD_CHANGE_NOT_ALLOWED = L’annuaire ne permet pas de changer le mot de passe de ce compte.
directory-PASSWORD_REFUSED = L’annuaire a refusé le nouveau mot de passe.
reason-DIRECTORY_UNAVAILABLE = L’annuaire est injoignable pour l’instant. Réessayez dans un moment ; votre validation reste valable un certain temps.
reason-OUTCOME_PENDING = L’annuaire n’a pas encore confirmé le changement. Réessayez dans un moment.
reason-DIRECTORY_ERROR = L’annuaire a refusé l’opération. L’administrateur a été prévenu.
reason-STORE_UNAVAILABLE = Le service ne peut pas enregistrer pour l’instant ; rien n’a été modifié. Réessayez plus tard.
reason-NOT_IN_SCOPE = Le libre-service n’est pas activé pour ce compte. Contactez le support.
reason-RESET_ALREADY_COMPLETED = Le mot de passe a déjà été changé dans cette démarche. Connectez-vous avec, ou recommencez.
reason-CONCURRENT_UPDATE = Trop de modifications simultanées. Réessayez.
reason-NOTHING_TO_CONFIRM = Il n’y a rien à confirmer.

question-bank-birth_city = Dans quelle ville êtes-vous né(e) ?
question-bank-first_pet = Quel était le nom de votre premier animal de compagnie ?
question-bank-first_school = Quel était le nom de votre première école ?
question-bank-childhood_friend = Quel est le prénom de votre meilleur(e) ami(e) d’enfance ?
question-bank-first_job_city = Dans quelle ville avez-vous eu votre premier emploi ?
question-bank-first_car = Quelles étaient la marque et le modèle de votre première voiture ?
question-bank-parents_met = Dans quelle ville vos parents se sont-ils rencontrés ?
question-bank-favourite_teacher = Quel était le nom de famille de votre enseignant(e) préféré(e) ?
question-bank-childhood_street = Quel était le nom de la rue où vous avez grandi ?
question-bank-first_concert = Quel a été le premier concert auquel vous avez assisté ?
question-bank-oldest_cousin = Quel est le prénom de votre cousin(e) le/la plus âgé(e) ?
question-bank-childhood_nickname = Quel était votre surnom d’enfance ?

home-methods = Mes méthodes
home-methods-detail = Enregistrez ou modifiez les moyens de prouver votre identité.
methods-title = Mes méthodes
sign-in-intro = Connectez-vous avec votre mot de passe actuel pour voir et modifier vos méthodes enregistrées.
current-password = Mot de passe actuel
sign-in = Se connecter
sign-out = Se déconnecter
signed-in-as = Connecté(e) en tant que { $login }.
nudge-required = Votre organisation vous demande d’enregistrer { $n ->
    [one] une méthode
   *[other] { $n } méthodes
  } pour pouvoir réinitialiser vous-même votre mot de passe.
nudge-reconfirm = Vérifiez que vos méthodes enregistrées sont toujours justes, puis confirmez-les.
reconfirm = Elles sont toujours justes
status-complete = Votre enregistrement est complet : vous pouvez réinitialiser vous-même votre mot de passe.
status-incomplete = Enregistrez { $n ->
    [one] une méthode
   *[other] { $n } méthodes
  } pour pouvoir réinitialiser vous-même votre mot de passe.
registered-title = Enregistré
nothing-registered = Rien n’est encore enregistré.
remove = Supprimer
remove-method = Supprimer { $method }
contact-email = Adresse e-mail
contact-mobile = Téléphone mobile
contact-office = Téléphone de bureau
contact-value-email = Votre adresse e-mail (pas l’adresse professionnelle, si vous voulez pouvoir réinitialiser sans accès à votre messagerie)
contact-value-mobile = Votre numéro de mobile, avec l’indicatif du pays (+33 …)
contact-value-office = Votre numéro de bureau, avec l’indicatif du pays
questions-intro = Choisissez des questions dont vous seul(e) connaissez la réponse et que vous n’oublierez pas. Les majuscules ne comptent pas.
question-n = Question { $n }
question-label = Question
answer-label = Votre réponse
save-questions = Enregistrer les questions
confirm = Confirmer
set-up-authenticator = Configurer une application d’authentification
scan-intro = Scannez ce code avec votre application d’authentification, puis saisissez le code qu’elle affiche.
qr-alt = Code QR pour votre application d’authentification
manual-key = Ou saisissez cette clé dans l’application :
notice-questions-saved = Vos questions de sécurité sont enregistrées.
notice-contact-code-sent = Nous avons envoyé un code à { $hint }. Saisissez-le ci-dessous pour confirmer.
notice-contact-confirmed = Confirmé et enregistré.
notice-scan-code = Scannez le code, puis saisissez le premier code affiché par l’application.
notice-authenticator-added = Votre application d’authentification est enregistrée.
notice-method-removed = La méthode est supprimée.
notice-reconfirmed = Merci : vos méthodes sont confirmées.
reason-REGISTRATION_TOKEN_INVALID = Votre connexion a expiré. Reconnectez-vous.
reason-WRONG_QUESTION_COUNT = Répondez à chacune des questions.
reason-UNKNOWN_QUESTION = Choisissez des questions dans la liste.
reason-DUPLICATE_QUESTION = Choisissez une question différente à chaque fois.
reason-ANSWER_TOO_SHORT = Cette réponse est trop courte : une réponse compte de { $min } à { $max } caractères.
reason-ANSWER_TOO_LONG = Cette réponse est trop longue : une réponse compte de { $min } à { $max } caractères.
reason-DUPLICATE_ANSWER = Donnez une réponse différente à chaque question.
reason-EMAIL_INVALID = Cette adresse e-mail n’est pas valide.
reason-PHONE_INVALID = Ce numéro n’est pas valide : indiquez-le avec l’indicatif du pays, par exemple +33 1 23 45 67 89.
reason-CONTACT_INVALID = Cette adresse ou ce numéro n’est pas valide.

home-change = Je veux changer mon mot de passe
home-change-detail = Vous connaissez votre mot de passe actuel, ou il a expiré, ou vous devez le changer.
change-title = Changer votre mot de passe
change-intro = Saisissez votre mot de passe actuel et le nouveau. Cela fonctionne aussi pour un mot de passe expiré ou à changer après une réinitialisation.
change-submit = Changer le mot de passe
done-change = Votre mot de passe a été modifié. Connectez-vous avec le nouveau.
reason-FORM_OUTDATED = Cette page n’est plus à jour : elle a été ouverte avant que vous commenciez autre chose, peut-être dans un autre onglet. Revenez au début et continuez à partir de là.
reason-FORM_CROSS_SITE = Ce formulaire ne provient pas de ce site : il n’a pas été accepté. Ouvrez l’adresse du portail lui-même et recommencez.
reason-PORTAL_BUSY = Le portail sert en ce moment autant de personnes qu’il le peut. Réessayez dans une minute.
reason-SESSION_ENDED = Votre session a pris fin (après un moment sans activité, ou parce que vous avez recommencé dans un autre onglet) : cette étape n’a pas été effectuée. Recommencez.
reason-SENDS_THROTTLED = Beaucoup de codes ont été envoyés récemment pour ce compte ou à cette adresse : le prochain pourra être envoyé dans { $minutes ->
    [one] une minute
   *[other] { $minutes } minutes
  }. En attendant, vous pouvez vérifier une autre méthode.
reason-SIGN_IN_PAUSED = La connexion par mot de passe est suspendue pour ce compte après plusieurs mots de passe erronés : celui-ci n’a donc pas été vérifié. Réessayez dans { $minutes ->
    [one] une minute
   *[other] { $minutes } minutes
  }, ou réinitialisez votre mot de passe dès maintenant avec les méthodes que vous avez enregistrées.
reason-SIGN_IN_PAUSED-UNTIL_RESET = La connexion par mot de passe est suspendue pour ce compte après plusieurs mots de passe erronés : celui-ci n’a donc pas été vérifié. Elle le reste jusqu’à la réinitialisation du mot de passe : réinitialisez-le dès maintenant avec les méthodes que vous avez enregistrées, ou contactez le support.
done-not-locked = Votre compte n’était pas verrouillé : il n’y avait rien à déverrouiller. Connectez-vous avec votre mot de passe actuel ; s’il n’est pas accepté, réinitialisez-le.
reason-VERIFICATIONS_IN_PROGRESS = D’autres vérifications sont en cours pour ce compte : celle-ci n’a donc pas été faite. Réessayez dans un instant.
answer-hint = De { $min } à { $max } caractères.
verify-tries = Vous pouvez encore vous tromper { $tries } fois ici avant de devoir attendre.
verify-last-try = Attention : encore une réponse ou un code erroné et cette réinitialisation se ferme, ou le libre-service est bloqué pour ce compte pendant une journée.
verify-authenticator = Vérifier le code de l’application
home-first-time = Première visite ? Enregistrez d’abord vos méthodes sous « Mes méthodes » : vous pourrez ensuite réinitialiser votre mot de passe vous-même à tout moment.
reason-REQUEST_TOO_LARGE = Ce qui a été envoyé est trop volumineux pour ce formulaire. Revenez en arrière et réessayez avec moins.
reason-FORM_INVALID = Ce formulaire n’a pas pu être lu. Revenez au début et remplissez-le à nouveau.
reason-UNSUPPORTED_CONTENT_TYPE = Ce formulaire n’a pas été envoyé comme formulaire web. Revenez au début et remplissez-le à nouveau.
reason-SSPR_BLOCKED-HOURS = Le libre-service est bloqué pour ce compte après trop de réponses ou de codes erronés. Il sera de nouveau possible dans { $hours ->
    [one] une heure
   *[other] { $hours } heures
  }, ou le support peut lever le blocage.
