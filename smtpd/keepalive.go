package smtpd

// TCP keep-alive on SMTP connections, Go's defaults: a peer that vanished
// (a printer switched off mid-session) is dropped after about 2.5 minutes
// instead of holding its connection slot until smtp.read_timeout.
const (
	keepAliveIdleSecs     = 15
	keepAliveIntervalSecs = 15
	keepAliveCount        = 9
)
