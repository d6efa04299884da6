package floor

import (
	"github.com/emersion/go-smtp"
)

var smtpClosed = smtp.ErrServerClosed
