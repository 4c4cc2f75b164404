"""The platform's own emails.  Add one: a declaration here (or in the feature's own
module) and its two template files."""

from authflow.emails.registry import EmailType, declare
from authflow.policies import EmailKind, OtpPurpose, PreferenceCategory

# The codes keep the names of their kinds (the contract's ``kind`` of ``/admin/otp``).
REGISTER_CODE = declare(
    EmailType(
        "register",
        EmailKind.REGISTER,
        "Your authflow verification code",
        code=OtpPurpose.REGISTER,
    )
)
PASSWORD_RESET_CODE = declare(
    EmailType(
        "password_reset",
        EmailKind.PASSWORD_RESET,
        "Your authflow password reset code",
        code=OtpPurpose.PASSWORD_RESET,
    )
)

# Security notices: never turned off, no List-Unsubscribe.
PASSWORD_CHANGED = declare(
    EmailType("password_changed", EmailKind.NOTIFICATION, "Your authflow password was changed")
)
PASSWORD_RESET_DONE = declare(
    EmailType("password_reset_done", EmailKind.NOTIFICATION, "Your authflow password was reset")
)
ACCOUNT_APPROVED = declare(
    EmailType("account_approved", EmailKind.NOTIFICATION, "Your authflow account was approved")
)

# A broadcast (``POST /announcements``): the sender's subject, Markdown body (the text
# part) and its sanitised HTML (``body_html``).
ANNOUNCEMENT = declare(
    EmailType(
        "announcement",
        EmailKind.ANNOUNCEMENT,
        "{{ subject }}",
        opt_out=PreferenceCategory.ANNOUNCEMENTS,
    )
)
