package doctor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Entra accepts a client assertion whose nbf is at most about five minutes
// in the future (graph-api.md §4.2: nbf/exp window with a few minutes of
// skew), so beyond that every token request fails with AADSTS700024. A
// minute is already a clock that is not synchronised.
const (
	skewWarn = time.Minute
	skewFail = 5 * time.Minute
)

const ntpFix = "synchronise the clock with NTP (Linux: timedatectl set-ntp true; Windows: w32tm /resync); Entra refuses client assertions from a clock more than about 5 minutes off (AADSTS700024)"

// checkClock compares the local clock with the Date header of the tenant's
// OpenID discovery document on the login host: the same service that judges
// the assertion's nbf and exp. The header has whole seconds, and the local
// time is taken halfway through the exchange, so the estimate is good to
// about a second plus half the round trip, far below the thresholds.
func checkClock(ctx context.Context, hc *http.Client, loginURL, tenant string) Result {
	res := Result{Name: "clock"}
	target := loginURL + "/" + url.PathEscape(tenant) + "/v2.0/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		res.Status, res.Detail, res.Fix = Warn, fmt.Sprintf("cannot build the request: %v", err), "check graph.authority_url"
		return res
	}
	start := time.Now()
	resp, err := hc.Do(req)
	end := time.Now()
	if err != nil {
		res.Status = Warn
		res.Detail = fmt.Sprintf("could not reach %s to compare clocks: %v", loginURL, err)
		res.Fix = "check DNS, the firewall and any HTTPS proxy (HTTPS_PROXY) for the login host; the token step shows the same problem"
		return res
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		res.Status = Warn
		res.Detail = fmt.Sprintf("%s sent no usable Date header (%q), so the clock could not be compared", loginURL, resp.Header.Get("Date"))
		res.Fix = "a proxy may strip the header; check the clock by hand against an NTP server"
		return res
	}
	// The server's true time lies in [date, date+1s); compare with its middle.
	local := start.Add(end.Sub(start) / 2)
	skew := local.Sub(date.Add(500 * time.Millisecond)).Round(time.Second)
	abs, direction := skew, "ahead of"
	if skew < 0 {
		abs, direction = -skew, "behind"
	}
	switch {
	case abs > skewFail:
		res.Status, res.Fix = Fail, ntpFix
		res.Detail = fmt.Sprintf("the local clock is %v %s the login host's (%s): more than Entra tolerates", abs, direction, loginURL)
	case abs > skewWarn:
		res.Status, res.Fix = Warn, ntpFix
		res.Detail = fmt.Sprintf("the local clock is %v %s the login host's (%s)", abs, direction, loginURL)
	default:
		res.Status = OK
		res.Detail = fmt.Sprintf("the local clock agrees with the login host's (%s) within %v", loginURL, max(abs, time.Second))
	}
	return res
}
