package main

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// foreignSpoolOwner returns the name of the user that owns spoolDir when
// this process runs as root and that user is not root, else "". A change
// that root makes in such a spool (a ctl/ request, a rewritten state file)
// would be root's, and the daemon, running as the owner, could not read
// it: the message would be skipped while "queue list" said "next try: now".
func foreignSpoolOwner(spoolDir string) string {
	if os.Geteuid() != 0 {
		return ""
	}
	uid, ok := fileOwner(spoolDir)
	if !ok || uid == 0 {
		return ""
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return "#" + strconv.Itoa(uid) // sudo's syntax for a numeric user
}

// refuseAsRoot is the message that names the command to run instead.
func refuseAsRoot(sub, spoolDir, owner string, args []string) string {
	cmd := append([]string{"sudo", "-u", owner, "graphrelay", "queue", sub}, args...)
	if !hasFlag(args, "--dir") && !hasFlag(args, "--config") {
		cmd = append(cmd, "--dir", spoolDir)
	}
	return fmt.Sprintf("graphrelay queue %s: refusing to change the spool %s as root: it belongs to %s, who could not read what root writes, so the daemon would skip the message. Run:\n  %s",
		sub, spoolDir, owner, strings.Join(cmd, " "))
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") || a == "-"+strings.TrimPrefix(name, "--") || strings.HasPrefix(a, "-"+strings.TrimPrefix(name, "--")+"=") {
			return true
		}
	}
	return false
}
