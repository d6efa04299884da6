package doctor

import (
	"errors"
	"fmt"
	"strings"

	"github.com/graphrelay/graphrelay/auth"
	"github.com/graphrelay/graphrelay/config"
	"github.com/graphrelay/graphrelay/policy"
)

// checkConfig loads the configuration as serve does and compiles what serve
// compiles at start (the users and the rules), so that every problem serve
// would refuse to start with is listed here at once. It returns the
// configuration when it is usable.
func checkConfig(path string, environ []string) (Result, *config.Config) {
	res := Result{Name: "config"}
	source := path
	if source == "" {
		source = "built-in defaults (no --config and no GRAPHRELAY_CONFIG)"
	}
	cfg, err := config.Load(path, environ)
	if err != nil {
		res.Status, res.Fix = Fail, "fix every problem listed, then run graphrelay check again"
		var errs config.Errors
		if errors.As(err, &errs) {
			lines := make([]string, len(errs))
			for i, e := range errs {
				lines[i] = e.Error()
			}
			res.Detail = fmt.Sprintf("%s: %d problem(s):\n%s", source, len(errs), strings.Join(lines, "\n"))
		} else {
			res.Detail = err.Error()
		}
		return res, nil
	}
	users, err := auth.Load(cfg.Users, cfg.UsersFile)
	if err != nil {
		res.Status, res.Detail = Fail, fmt.Sprintf("%s: users: %v", source, err)
		res.Fix = "fix the users or users_file entries (hashes come from graphrelay passwd)"
		return res, nil
	}
	_, warnings, err := policy.New(cfg, users.Has)
	if err != nil {
		res.Status, res.Detail = Fail, fmt.Sprintf("%s: %v", source, err)
		res.Fix = "fix the rules listed (each names its index), then run graphrelay check again"
		return res, nil
	}
	res.Status = OK
	res.Detail = fmt.Sprintf("%s: %s, %s, %s delivery, credential %s, cloud %s", source,
		plural(len(cfg.Mailboxes), "mailbox", "mailboxes"), plural(len(cfg.SMTP.Listeners), "listener", "listeners"),
		cfg.Delivery.Mode, orNone(cfg.Graph.CredentialKind()), cfg.Graph.Cloud)
	if len(cfg.Rules) == 0 {
		res.Detail += "; no rules: the implicit rules apply (recipients limited to the mailboxes' domains)"
	}
	if len(warnings) > 0 {
		res.Status = Warn
		res.Detail += "\n" + strings.Join(warnings, "\n")
		res.Fix = "narrow the rules named: list the recipients a rule needs instead of \"*\", match clients by networks or auth_user, and order rules so the first match wins"
	}
	return res, cfg
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
