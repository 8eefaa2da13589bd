# ssprd portal — English. Every message here must exist in every other language
# (src/portal/i18n.rs tests it). Arguments: { $name }.

product-name = Password self-service
skip-to-content = Skip to the main content
language = Language
language-change = Apply
problem-title = There is a problem
problem-page-title = Something went wrong
back-home = Back to the start
continue = Continue
start-over = Start over

home-title = How can we help?
home-intro = Reset a forgotten password or unlock your account yourself, with the methods you registered.
home-reset = I forgot my password
home-reset-detail = Prove it is you and choose a new password.
home-unlock = My account is locked
home-unlock-detail = Prove it is you and unlock it, keeping your password.

start-title-reset = Reset your password
start-title-unlock = Unlock your account
start-intro = Enter your user name. Next you will prove it is you with the methods you registered.
login-label = User name
login-hint = The name you sign in with, for example jsmith.

verify-title = Prove it is you
verify-intro = { $required ->
    [one] Verify one of the methods below.
   *[other] Verify { $required } of the methods below ({ $verified } done so far).
  }
method-security_questions = Security questions
method-email = Email
method-mobile_sms = Text message
method-mobile_voice = Call to your mobile phone
method-office_voice = Call to your office phone
method-authenticator_code = Authenticator app
code-to = We will send a code to { $hint }.
send-code = Send code
call-instead = Call me with the code instead of sending a text
send-again = Send a new code
code-label = Code
code-hint = The { $length }-digit code we sent you.
verify-code = Verify code
verify-answers = Check answers
authenticator-label = The 6-digit code your authenticator app shows now

password-title = Choose a new password
password-intro = New password for { $login }.
rules-title = Your new password must
rule-min-length = have at least { $n } characters
rule-complexity = mix character kinds (upper and lower case, digits, symbols) as your organisation requires
rule-history = differ from your last { $n } passwords
rule-no-name = not contain your user name or your name
rule-not-common = not be a commonly used password
rule-not-breached = not appear in a list of leaked passwords
rule-strength = be hard to guess (strength { $n } of 4 or more)
rules-directory-more = Your account may have rules of its own; if the new password breaks one, you will be told which.
new-password = New password
confirm-password = New password again
unlock-too = Also unlock my account if it is locked
set-password = Set new password

done-title = Done
done-reset = Your password has been changed. Sign in with your new password.
done-unlocked-too = Your account is unlocked as well.
done-unlock = Your account is unlocked. Sign in with your current password.

notice-code-sent = We sent a code to { $hint }. It may take a minute to arrive.
notice-one-more = That is verified. Now verify one more method.

reason-OTHER = The request could not be completed ({ $reason }). Try again, or contact the helpdesk.
reason-FORM_EXPIRED = Your browser sent this form without its session cookie (cookies may be off, or the browser was closed). Allow cookies for this site and start again.
reason-NOT_FOUND = This page does not exist.
reason-NOT_VERIFIED = That was not right. Check and try again.
reason-PASSWORDS_DIFFER = The two passwords are not the same.
reason-CLIENT_RATE_LIMITED = Too many requests from your network. Wait a minute and try again.
reason-USERNAME_REQUIRED = Enter your user name.
reason-USERNAME_INVALID = That is not a valid user name.
reason-INVALID_CREDENTIALS = The user name or password is not correct.
reason-FLOW_INVALID = This reset has expired or is finished. Start again.
reason-METHODS_NOT_VERIFIED = Verify the methods first.
reason-METHOD_NOT_ENABLED = This method is not available here.
reason-METHOD_NOT_AVAILABLE = This method is not available for this reset.
reason-METHOD_ALREADY_VERIFIED = This method is already verified.
reason-WRONG_QUESTIONS = Answer the questions shown, each once.
reason-NOT_A_CODE_METHOD = Codes are sent for email and phone methods only.
reason-DELIVERY_UNAVAILABLE = The code could not be sent now. Try again later or use another method.
reason-DELIVERY_REFUSED = The code could not be delivered to this address or number. Use another method.
reason-DELIVERY_NOT_CONFIGURED = Codes cannot be sent this way here. Use another method.
reason-TOO_MANY_CODES = Too many codes were sent in this session. Start again later.
reason-CODE_INVALID = The code is not correct.
reason-CODE_EXPIRED = The code has expired or was tried too often. Ask for a new one.
reason-TOO_MANY_ATTEMPTS = Too many wrong answers. Start again.
reason-SSPR_BLOCKED = Self-service is blocked for this account after too many wrong answers or codes. It can be used again in { $minutes ->
    [one] a minute
   *[other] { $minutes } minutes
  }, or the helpdesk can lift the block.
reason-PASSWORD_REQUIRED = Enter a new password.
reason-PASSWORD_INVALID_CHARACTER = The new password contains a character that is not allowed.
reason-PASSWORD_TOO_SHORT = The new password must have at least { $n } characters.
reason-PASSWORD_TOO_LONG = The new password must have at most { $n } characters.
reason-PASSWORD_BANNED = The new password contains a word that is not allowed here.
reason-PASSWORD_COMMON = The new password is one of the most common passwords, or close to one. Choose another.
reason-PASSWORD_CONTAINS_NAME = The new password must not contain your user name or your name.
reason-PASSWORD_TOO_WEAK = The new password is too easy to guess. Make it longer or less predictable.
reason-PASSWORD_BREACHED = The new password appears in a list of leaked passwords. Choose another.
directory-PASSWORD_TOO_SHORT = The directory refused the new password: it is too short.
directory-PASSWORD_TOO_LONG = The directory refused the new password: it is too long.
directory-PASSWORD_IN_HISTORY = The directory refused the new password: you used it before. Choose one you have not used.
directory-PASSWORD_TOO_SIMPLE = The directory refused the new password: it is too simple.
directory-PASSWORD_TOO_YOUNG = Your password was changed very recently; the directory allows the next change later.
directory-PASSWORD_POLICY_NOT_MET = The directory refused the new password: it does not meet the password policy (length, complexity or history).
directory-PASSWORD_CHANGE_NOT_ALLOWED = The directory does not allow this account's password to be changed.
directory-PASSWORD_REFUSED = The directory refused the new password.
reason-DIRECTORY_UNAVAILABLE = The directory cannot be reached right now. Try again in a moment; your verification stays valid for a while.
reason-OUTCOME_PENDING = The directory has not confirmed the change yet. Try again in a moment.
reason-DIRECTORY_ERROR = The directory refused the operation. The administrator has been told.
reason-STORE_UNAVAILABLE = The service cannot save right now; nothing was changed. Try again later.
reason-NOT_IN_SCOPE = Self-service is not enabled for this account. Contact the helpdesk.
reason-RESET_ALREADY_COMPLETED = The password was already changed in this reset. Sign in with it, or start again.
reason-CONCURRENT_UPDATE = Too many changes at once. Try again.
reason-NOTHING_TO_CONFIRM = There is nothing to confirm.

question-bank-birth_city = In what city were you born?
question-bank-first_pet = What was the name of your first pet?
question-bank-first_school = What was the name of your first school?
question-bank-childhood_friend = What is the first name of your childhood best friend?
question-bank-first_job_city = In what city did you have your first job?
question-bank-first_car = What was the make and model of your first car?
question-bank-parents_met = In what city did your parents meet?
question-bank-favourite_teacher = What was the last name of your favourite teacher?
question-bank-childhood_street = What was the name of the street you grew up on?
question-bank-first_concert = What was the first concert you attended?
question-bank-oldest_cousin = What is the first name of your oldest cousin?
question-bank-childhood_nickname = What was your childhood nickname?

home-methods = My methods
home-methods-detail = Register or change the ways you prove it is you.
methods-title = My methods
sign-in-intro = Sign in with your current password to see and change your registered methods.
current-password = Current password
sign-in = Sign in
sign-out = Sign out
signed-in-as = Signed in as { $login }.
nudge-required = Your organisation asks you to register { $n ->
    [one] a method
   *[other] { $n } methods
  } so you can reset your password yourself.
nudge-reconfirm = Please check that your registered methods are still right, and confirm them.
reconfirm = They are still right
status-complete = Your registration is complete: you can reset your password yourself.
status-incomplete = Register { $n ->
    [one] one method
   *[other] { $n } methods
  } to be able to reset your password yourself.
registered-title = Registered
nothing-registered = Nothing is registered yet.
remove = Remove
remove-method = Remove { $method }
contact-email = Email address
contact-mobile = Mobile phone
contact-office = Office phone
contact-value-email = Your email address (not your work address, if you want to reset when you cannot get at your mail)
contact-value-mobile = Your mobile number, with the country code (+44 …)
contact-value-office = Your office number, with the country code
questions-intro = Choose questions whose answers only you know and will not forget. Answers are not case-sensitive.
question-n = Question { $n }
question-label = Question
answer-label = Your answer
save-questions = Save questions
confirm = Confirm
set-up-authenticator = Set up an authenticator app
scan-intro = Scan this code with your authenticator app, then type the code it shows.
qr-alt = QR code for your authenticator app
manual-key = Or type this key into the app:
notice-questions-saved = Your security questions are saved.
notice-contact-code-sent = We sent a code to { $hint }. Type it below to confirm.
notice-contact-confirmed = Confirmed and registered.
notice-scan-code = Scan the code, then type the first code your app shows.
notice-authenticator-added = Your authenticator app is registered.
notice-method-removed = The method is removed.
notice-reconfirmed = Thank you: your methods are confirmed.
reason-REGISTRATION_TOKEN_INVALID = Your sign-in has expired. Sign in again.
reason-WRONG_QUESTION_COUNT = Answer each of the questions.
reason-UNKNOWN_QUESTION = Choose questions from the list.
reason-DUPLICATE_QUESTION = Choose a different question each time.
reason-ANSWER_TOO_SHORT = This answer is too short: an answer has { $min } to { $max } characters.
reason-ANSWER_TOO_LONG = This answer is too long: an answer has { $min } to { $max } characters.
reason-DUPLICATE_ANSWER = Give a different answer to each question.
reason-EMAIL_INVALID = That is not a valid email address.
reason-PHONE_INVALID = That is not a valid phone number: give it with the country code, for example +44 20 7946 0000.
reason-CONTACT_INVALID = That address or number is not valid.

home-change = I want to change my password
home-change-detail = You know your current password, or it has expired, or you must change it.
change-title = Change your password
change-intro = Enter your current password and the new one. This works for a password that has expired or that you must change after a reset, too.
change-submit = Change password
done-change = Your password has been changed. Sign in with your new password.
reason-FORM_OUTDATED = This page is out of date: it was opened before you started something new, perhaps in another tab. Go back to the start and continue there.
reason-FORM_CROSS_SITE = This form did not come from this site, so it was not accepted. Open the portal’s own address and start again.
reason-PORTAL_BUSY = The portal is serving as many people as it can right now. Try again in a minute.
reason-SESSION_ENDED = Your session ended (after some time without activity, or because you started again in another tab), so this step was not done. Start again.
reason-SENDS_THROTTLED = Many codes were sent for this account or to this address lately, so the next one can be sent in { $minutes ->
    [one] a minute
   *[other] { $minutes } minutes
  }. Meanwhile you can verify another method.
reason-SIGN_IN_PAUSED = Password sign-in is paused for this account after several wrong passwords, so this one was not checked. Try again in { $minutes ->
    [one] a minute
   *[other] { $minutes } minutes
  }, or reset your password now with the methods you registered.
reason-SIGN_IN_PAUSED-UNTIL_RESET = Password sign-in is paused for this account after several wrong passwords, so this one was not checked. It stays paused until the password is reset: reset it now with the methods you registered, or ask the helpdesk.
done-not-locked = Your account was not locked, so nothing needed unlocking. Sign in with your current password; if it is not accepted, reset it.
reason-VERIFICATIONS_IN_PROGRESS = Other checks for this account are running at this moment, so this one was not checked. Try again in a moment.
answer-hint = { $min } to { $max } characters.
verify-tries = You can get { $tries } more answers or codes wrong here before you have to wait.
verify-last-try = Careful: one more wrong answer or code and this reset closes, or self-service is blocked for this account for a day.
verify-authenticator = Verify app code
home-first-time = First time here? Register your methods under “My methods” first: then you can reset your password yourself whenever you need to.
reason-REQUEST_TOO_LARGE = What was sent is too large for this form. Go back and try again with less.
reason-FORM_INVALID = This form could not be read. Go back to the start and fill it in again.
reason-UNSUPPORTED_CONTENT_TYPE = This form was not sent as a web form. Go back to the start and fill it in again.
reason-SSPR_BLOCKED-HOURS = Self-service is blocked for this account after too many wrong answers or codes. It can be used again in { $hours ->
    [one] an hour
   *[other] { $hours } hours
  }, or the helpdesk can lift the block.
