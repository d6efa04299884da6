package floor

import (
	"time"

	"github.com/emersion/go-smtp"
)

var smtpClosed = smtp.ErrServerClosed

// waitABit pauses while a test polls for another goroutine's state.
func waitABit() { time.Sleep(time.Millisecond) }
