# ssprd-Portal — Deutsch.

product-name = Passwort-Selbstbedienung
skip-to-content = Zum Hauptinhalt springen
language = Sprache
language-change = Übernehmen
problem-title = Es gibt ein Problem
problem-page-title = Etwas ist schiefgegangen
back-home = Zurück zum Anfang
continue = Weiter
start-over = Neu beginnen

home-title = Wobei können wir helfen?
home-intro = Setzen Sie ein vergessenes Passwort selbst zurück oder entsperren Sie Ihr Konto – mit den Methoden, die Sie registriert haben.
home-reset = Ich habe mein Passwort vergessen
home-reset-detail = Weisen Sie sich aus und wählen Sie ein neues Passwort.
home-unlock = Mein Konto ist gesperrt
home-unlock-detail = Weisen Sie sich aus und entsperren Sie es; Ihr Passwort bleibt.

start-title-reset = Passwort zurücksetzen
start-title-unlock = Konto entsperren
start-intro = Geben Sie Ihren Benutzernamen ein. Danach weisen Sie sich mit den registrierten Methoden aus.
login-label = Benutzername
login-hint = Der Name, mit dem Sie sich anmelden, zum Beispiel jsmith.

verify-title = Weisen Sie sich aus
verify-intro = { $required ->
    [one] Bestätigen Sie eine der folgenden Methoden.
   *[other] Bestätigen Sie { $required } der folgenden Methoden (bisher { $verified }).
  }
method-security_questions = Sicherheitsfragen
method-email = E-Mail
method-mobile_sms = SMS
method-mobile_voice = Anruf auf Ihr Mobiltelefon
method-office_voice = Anruf auf Ihr Bürotelefon
method-authenticator_code = Authenticator-App
code-to = Wir senden einen Code an { $hint }.
send-code = Code senden
call-instead = Mich mit dem Code anrufen statt eine SMS zu senden
send-again = Neuen Code senden
code-label = Code
code-hint = Der { $length }-stellige Code, den wir Ihnen gesendet haben.
verify-code = Code prüfen
verify-answers = Antworten prüfen
authenticator-label = Der 6-stellige Code, den Ihre Authenticator-App jetzt anzeigt

password-title = Neues Passwort wählen
password-intro = Neues Passwort für { $login }.
rules-title = Ihr neues Passwort muss
rule-min-length = mindestens { $n } Zeichen haben
rule-complexity = verschiedene Zeichenarten mischen (Groß- und Kleinbuchstaben, Ziffern, Sonderzeichen), wie Ihre Organisation es verlangt
rule-history = sich von Ihren letzten { $n } Passwörtern unterscheiden
rule-no-name = weder Ihren Benutzernamen noch Ihren Namen enthalten
rule-not-common = kein häufig verwendetes Passwort sein
rule-not-breached = in keiner Liste geleakter Passwörter stehen
rules-directory-more = Für Ihr Konto können eigene Regeln gelten; verletzt das neue Passwort eine davon, sagen wir Ihnen, welche.
rule-strength = schwer zu erraten sein (Stärke { $n } von 4 oder mehr)
new-password = Neues Passwort
confirm-password = Neues Passwort wiederholen
unlock-too = Mein Konto auch entsperren, falls es gesperrt ist
set-password = Neues Passwort setzen

done-title = Erledigt
done-reset = Ihr Passwort wurde geändert. Melden Sie sich mit dem neuen Passwort an.
done-unlocked-too = Ihr Konto ist außerdem entsperrt.
done-unlock = Ihr Konto ist entsperrt. Melden Sie sich mit Ihrem bisherigen Passwort an.

notice-code-sent = Wir haben einen Code an { $hint } gesendet. Es kann eine Minute dauern, bis er ankommt.
notice-one-more = Das ist bestätigt. Bestätigen Sie jetzt noch eine Methode.

reason-OTHER = Die Anfrage konnte nicht ausgeführt werden ({ $reason }). Versuchen Sie es erneut oder wenden Sie sich an den Helpdesk.
reason-FORM_EXPIRED = Ihr Browser hat dieses Formular ohne sein Sitzungs-Cookie gesendet (Cookies sind vielleicht ausgeschaltet, oder der Browser wurde geschlossen). Erlauben Sie Cookies für diese Website und beginnen Sie neu.
reason-NOT_FOUND = Diese Seite gibt es nicht.
reason-NOT_VERIFIED = Das war nicht richtig. Prüfen Sie Ihre Eingabe und versuchen Sie es erneut.
reason-PASSWORDS_DIFFER = Die beiden Passwörter sind nicht gleich.
reason-CLIENT_RATE_LIMITED = Zu viele Anfragen aus Ihrem Netz. Warten Sie eine Minute und versuchen Sie es erneut.
reason-USERNAME_REQUIRED = Geben Sie Ihren Benutzernamen ein.
reason-USERNAME_INVALID = Das ist kein gültiger Benutzername.
reason-INVALID_CREDENTIALS = Benutzername oder Passwort ist nicht korrekt.
reason-FLOW_INVALID = Dieser Vorgang ist abgelaufen oder abgeschlossen. Beginnen Sie neu.
reason-METHODS_NOT_VERIFIED = Bestätigen Sie zuerst die Methoden.
reason-METHOD_NOT_ENABLED = Diese Methode ist hier nicht verfügbar.
reason-METHOD_NOT_AVAILABLE = Diese Methode ist für diesen Vorgang nicht verfügbar.
reason-METHOD_ALREADY_VERIFIED = Diese Methode ist bereits bestätigt.
reason-WRONG_QUESTIONS = Beantworten Sie die angezeigten Fragen, jede einmal.
reason-NOT_A_CODE_METHOD = Codes gibt es nur per E-Mail und Telefon.
reason-DELIVERY_UNAVAILABLE = Der Code kann gerade nicht gesendet werden. Versuchen Sie es später oder nutzen Sie eine andere Methode.
reason-DELIVERY_REFUSED = Der Code kann an diese Adresse oder Nummer nicht zugestellt werden. Nutzen Sie eine andere Methode.
reason-DELIVERY_NOT_CONFIGURED = Codes können hier nicht auf diesem Weg gesendet werden. Nutzen Sie eine andere Methode.
reason-TOO_MANY_CODES = In dieser Sitzung wurden zu viele Codes gesendet. Beginnen Sie später neu.
reason-CODE_INVALID = Der Code ist nicht korrekt.
reason-CODE_EXPIRED = Der Code ist abgelaufen oder wurde zu oft versucht. Fordern Sie einen neuen an.
reason-TOO_MANY_ATTEMPTS = Zu viele falsche Antworten. Beginnen Sie neu.
reason-SSPR_BLOCKED = Die Selbstbedienung ist für dieses Konto nach zu vielen falschen Antworten oder Codes gesperrt. Sie ist in { $minutes ->
    [one] einer Minute
   *[other] { $minutes } Minuten
  } wieder möglich, oder der Helpdesk hebt die Sperre auf.
reason-PASSWORD_REQUIRED = Geben Sie ein neues Passwort ein.
reason-PASSWORD_INVALID_CHARACTER = Das neue Passwort enthält ein unzulässiges Zeichen.
reason-PASSWORD_TOO_SHORT = Das neue Passwort muss mindestens { $n } Zeichen haben.
reason-PASSWORD_TOO_LONG = Das neue Passwort darf höchstens { $n } Zeichen haben.
reason-PASSWORD_BANNED = Das neue Passwort enthält ein Wort, das hier nicht erlaubt ist.
reason-PASSWORD_COMMON = Das neue Passwort ist eines der häufigsten Passwörter oder ähnelt einem. Wählen Sie ein anderes.
reason-PASSWORD_CONTAINS_NAME = Das neue Passwort darf weder Ihren Benutzernamen noch Ihren Namen enthalten.
reason-PASSWORD_TOO_WEAK = Das neue Passwort ist zu leicht zu erraten. Machen Sie es länger oder weniger vorhersehbar.
reason-PASSWORD_BREACHED = Das neue Passwort steht in einer Liste geleakter Passwörter. Wählen Sie ein anderes.
directory-PASSWORD_TOO_SHORT = Der Verzeichnisdienst hat das neue Passwort abgelehnt: Es ist zu kurz.
directory-PASSWORD_TOO_LONG = Der Verzeichnisdienst hat das neue Passwort abgelehnt: Es ist zu lang.
directory-PASSWORD_IN_HISTORY = Der Verzeichnisdienst hat das neue Passwort abgelehnt: Sie haben es schon einmal verwendet. Wählen Sie ein bisher unbenutztes.
directory-PASSWORD_TOO_SIMPLE = Der Verzeichnisdienst hat das neue Passwort abgelehnt: Es ist zu einfach.
directory-PASSWORD_TOO_YOUNG = Ihr Passwort wurde gerade erst geändert; der Verzeichnisdienst erlaubt die nächste Änderung später.
directory-PASSWORD_POLICY_NOT_MET = Der Verzeichnisdienst hat das neue Passwort abgelehnt: Es erfüllt die Passwortrichtlinie nicht (Länge, Komplexität oder Verlauf).
directory-PASSWORD_CHANGE_NOT_ALLOWED = Der Verzeichnisdienst erlaubt keine Änderung des Passworts dieses Kontos.
directory-PASSWORD_REFUSED = Der Verzeichnisdienst hat das neue Passwort abgelehnt.
reason-DIRECTORY_UNAVAILABLE = Der Verzeichnisdienst ist gerade nicht erreichbar. Versuchen Sie es gleich noch einmal; Ihre Bestätigung bleibt eine Weile gültig.
reason-OUTCOME_PENDING = Der Verzeichnisdienst hat die Änderung noch nicht bestätigt. Versuchen Sie es gleich noch einmal.
reason-DIRECTORY_ERROR = Der Verzeichnisdienst hat den Vorgang abgelehnt. Die Administration wurde informiert.
reason-STORE_UNAVAILABLE = Der Dienst kann gerade nicht speichern; nichts wurde geändert. Versuchen Sie es später.
reason-NOT_IN_SCOPE = Die Selbstbedienung ist für dieses Konto nicht aktiviert. Wenden Sie sich an den Helpdesk.
reason-RESET_ALREADY_COMPLETED = Das Passwort wurde in diesem Vorgang bereits geändert. Melden Sie sich damit an oder beginnen Sie neu.
reason-CONCURRENT_UPDATE = Zu viele gleichzeitige Änderungen. Versuchen Sie es erneut.
reason-NOTHING_TO_CONFIRM = Es gibt nichts zu bestätigen.

question-bank-birth_city = In welcher Stadt wurden Sie geboren?
question-bank-first_pet = Wie hieß Ihr erstes Haustier?
question-bank-first_school = Wie hieß Ihre erste Schule?
question-bank-childhood_friend = Wie lautet der Vorname Ihres besten Freundes aus der Kindheit?
question-bank-first_job_city = In welcher Stadt hatten Sie Ihre erste Arbeitsstelle?
question-bank-first_car = Welche Marke und welches Modell war Ihr erstes Auto?
question-bank-parents_met = In welcher Stadt haben sich Ihre Eltern kennengelernt?
question-bank-favourite_teacher = Wie lautet der Nachname Ihrer Lieblingslehrerin oder Ihres Lieblingslehrers?
question-bank-childhood_street = Wie hieß die Straße, in der Sie aufgewachsen sind?
question-bank-first_concert = Welches war das erste Konzert, das Sie besucht haben?
question-bank-oldest_cousin = Wie lautet der Vorname Ihrer ältesten Cousine oder Ihres ältesten Cousins?
question-bank-childhood_nickname = Wie war Ihr Spitzname als Kind?

home-methods = Meine Methoden
home-methods-detail = Registrieren oder ändern Sie, wie Sie sich ausweisen.
methods-title = Meine Methoden
sign-in-intro = Melden Sie sich mit Ihrem aktuellen Passwort an, um Ihre registrierten Methoden zu sehen und zu ändern.
current-password = Aktuelles Passwort
sign-in = Anmelden
sign-out = Abmelden
signed-in-as = Angemeldet als { $login }.
nudge-required = Ihre Organisation bittet Sie, { $n ->
    [one] eine Methode
   *[other] { $n } Methoden
  } zu registrieren, damit Sie Ihr Passwort selbst zurücksetzen können.
nudge-reconfirm = Bitte prüfen Sie, ob Ihre registrierten Methoden noch stimmen, und bestätigen Sie sie.
reconfirm = Sie stimmen noch
status-complete = Ihre Registrierung ist vollständig: Sie können Ihr Passwort selbst zurücksetzen.
status-incomplete = Registrieren Sie { $n ->
    [one] eine Methode
   *[other] { $n } Methoden
  }, um Ihr Passwort selbst zurücksetzen zu können.
registered-title = Registriert
nothing-registered = Noch nichts registriert.
remove = Entfernen
remove-method = { $method } entfernen
contact-email = E-Mail-Adresse
contact-mobile = Mobiltelefon
contact-office = Bürotelefon
contact-value-email = Ihre E-Mail-Adresse (nicht die dienstliche, wenn Sie auch ohne Zugang zu Ihrer Post zurücksetzen wollen)
contact-value-mobile = Ihre Mobilnummer mit Ländervorwahl (+49 …)
contact-value-office = Ihre Büronummer mit Ländervorwahl
questions-intro = Wählen Sie Fragen, deren Antworten nur Sie kennen und nicht vergessen. Groß- und Kleinschreibung spielt keine Rolle.
question-n = Frage { $n }
question-label = Frage
answer-label = Ihre Antwort
save-questions = Fragen speichern
confirm = Bestätigen
set-up-authenticator = Authenticator-App einrichten
scan-intro = Scannen Sie diesen Code mit Ihrer Authenticator-App und geben Sie dann den angezeigten Code ein.
qr-alt = QR-Code für Ihre Authenticator-App
manual-key = Oder geben Sie diesen Schlüssel in der App ein:
notice-questions-saved = Ihre Sicherheitsfragen sind gespeichert.
notice-contact-code-sent = Wir haben einen Code an { $hint } gesendet. Geben Sie ihn unten ein, um zu bestätigen.
notice-contact-confirmed = Bestätigt und registriert.
notice-scan-code = Scannen Sie den Code und geben Sie den ersten Code Ihrer App ein.
notice-authenticator-added = Ihre Authenticator-App ist registriert.
notice-method-removed = Die Methode ist entfernt.
notice-reconfirmed = Danke: Ihre Methoden sind bestätigt.
reason-REGISTRATION_TOKEN_INVALID = Ihre Anmeldung ist abgelaufen. Melden Sie sich erneut an.
reason-WRONG_QUESTION_COUNT = Beantworten Sie jede der Fragen.
reason-UNKNOWN_QUESTION = Wählen Sie Fragen aus der Liste.
reason-DUPLICATE_QUESTION = Wählen Sie jedes Mal eine andere Frage.
reason-ANSWER_TOO_SHORT = Diese Antwort ist zu kurz: Eine Antwort hat { $min } bis { $max } Zeichen.
reason-ANSWER_TOO_LONG = Diese Antwort ist zu lang: Eine Antwort hat { $min } bis { $max } Zeichen.
reason-DUPLICATE_ANSWER = Geben Sie auf jede Frage eine andere Antwort.
reason-EMAIL_INVALID = Das ist keine gültige E-Mail-Adresse.
reason-PHONE_INVALID = Das ist keine gültige Telefonnummer: Geben Sie sie mit Ländervorwahl an, zum Beispiel +49 30 1234567.
reason-CONTACT_INVALID = Diese Adresse oder Nummer ist nicht gültig.

home-change = Ich möchte mein Passwort ändern
home-change-detail = Sie kennen Ihr aktuelles Passwort, oder es ist abgelaufen, oder Sie müssen es ändern.
change-title = Passwort ändern
change-intro = Geben Sie Ihr aktuelles und das neue Passwort ein. Das geht auch, wenn das Passwort abgelaufen ist oder nach einem Zurücksetzen geändert werden muss.
change-submit = Passwort ändern
done-change = Ihr Passwort wurde geändert. Melden Sie sich mit dem neuen Passwort an.
reason-FORM_OUTDATED = Diese Seite ist veraltet: Sie wurde geöffnet, bevor Sie etwas Neues begonnen haben, vielleicht in einem anderen Tab. Gehen Sie zum Anfang zurück und machen Sie dort weiter.
reason-FORM_CROSS_SITE = Dieses Formular stammt nicht von dieser Website und wurde deshalb nicht angenommen. Öffnen Sie die Adresse des Portals selbst und beginnen Sie neu.
reason-PORTAL_BUSY = Das Portal bedient gerade so viele Personen, wie es kann. Versuchen Sie es in einer Minute erneut.
reason-SESSION_ENDED = Ihre Sitzung ist beendet (nach einiger Zeit ohne Aktivität, oder weil Sie in einem anderen Tab neu begonnen haben); dieser Schritt wurde nicht ausgeführt. Beginnen Sie neu.
reason-SENDS_THROTTLED = Für dieses Konto oder an diese Adresse wurden zuletzt viele Codes gesendet; der nächste kann in { $minutes ->
    [one] einer Minute
   *[other] { $minutes } Minuten
  } gesendet werden. Bis dahin können Sie eine andere Methode bestätigen.
reason-SIGN_IN_PAUSED = Die Anmeldung mit Passwort ist für dieses Konto nach mehreren falschen Passwörtern pausiert; dieses wurde deshalb nicht geprüft. Versuchen Sie es in { $minutes ->
    [one] einer Minute
   *[other] { $minutes } Minuten
  } erneut, oder setzen Sie Ihr Passwort jetzt mit Ihren registrierten Methoden zurück.
reason-SIGN_IN_PAUSED-UNTIL_RESET = Die Anmeldung mit Passwort ist für dieses Konto nach mehreren falschen Passwörtern pausiert; dieses wurde deshalb nicht geprüft. Sie bleibt pausiert, bis das Passwort zurückgesetzt wird: Setzen Sie es jetzt mit Ihren registrierten Methoden zurück, oder wenden Sie sich an den Helpdesk.
done-not-locked = Ihr Konto war nicht gesperrt; es musste nichts entsperrt werden. Melden Sie sich mit Ihrem aktuellen Passwort an; wird es nicht angenommen, setzen Sie es zurück.
reason-VERIFICATIONS_IN_PROGRESS = Für dieses Konto laufen gerade andere Prüfungen; diese wurde deshalb nicht geprüft. Versuchen Sie es gleich noch einmal.
answer-hint = { $min } bis { $max } Zeichen.
verify-tries = Sie können sich hier noch { $tries }-mal irren, bevor Sie warten müssen.
verify-last-try = Vorsicht: Noch eine falsche Antwort oder ein falscher Code, und dieses Zurücksetzen endet oder die Selbstbedienung wird für dieses Konto einen Tag lang gesperrt.
verify-authenticator = App-Code prüfen
home-first-time = Zum ersten Mal hier? Registrieren Sie zuerst Ihre Methoden unter „Meine Methoden“: Dann können Sie Ihr Passwort jederzeit selbst zurücksetzen.
reason-REQUEST_TOO_LARGE = Das Gesendete ist für dieses Formular zu groß. Gehen Sie zurück und versuchen Sie es mit weniger.
reason-FORM_INVALID = Dieses Formular konnte nicht gelesen werden. Gehen Sie zum Anfang zurück und füllen Sie es erneut aus.
reason-UNSUPPORTED_CONTENT_TYPE = Dieses Formular wurde nicht als Webformular gesendet. Gehen Sie zum Anfang zurück und füllen Sie es erneut aus.
reason-SSPR_BLOCKED-HOURS = Die Selbstbedienung ist für dieses Konto nach zu vielen falschen Antworten oder Codes gesperrt. Sie ist in { $hours ->
    [one] einer Stunde
   *[other] { $hours } Stunden
  } wieder möglich, oder der Helpdesk hebt die Sperre auf.
