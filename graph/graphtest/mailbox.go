package graphtest

import "strings"

// lookupMailbox resolves the {id} of a Graph URL, an address (matched
// case-insensitively, as Exchange does) or an object id, to a mailbox.
func (s *Server) lookupMailbox(ref string) (Mailbox, bool) {
	if len(s.cfg.Mailboxes) == 0 {
		switch {
		case isGUID(ref):
			return Mailbox{ID: strings.ToLower(ref)}, true
		case validAddress(ref):
			return Mailbox{Address: ref, ID: derivedGUID("mailbox", strings.ToLower(ref))}, true
		}
		return Mailbox{}, false
	}
	for _, m := range s.cfg.Mailboxes {
		if (m.Address != "" && strings.EqualFold(m.Address, ref)) || strings.EqualFold(m.ID, ref) {
			return m, true
		}
	}
	return Mailbox{}, false
}

// accessAllowed applies the Application Access Policy: with an allow list
// in force, the mailbox must be named in it by address or object id.
func (s *Server) accessAllowed(mb Mailbox) bool {
	s.mu.Lock()
	policy := s.accessPolicy
	s.mu.Unlock()
	if policy == nil {
		return true
	}
	for _, entry := range policy {
		if (mb.Address != "" && strings.EqualFold(entry, mb.Address)) || strings.EqualFold(entry, mb.ID) {
			return true
		}
	}
	return false
}

// maySendAs reports whether the mailbox may put addr in From or Sender: its
// own address always, anything else only with a Send As grant.
func (s *Server) maySendAs(mb Mailbox, addr string) bool {
	if mb.Address != "" && strings.EqualFold(mb.Address, addr) {
		return true
	}
	for owner, extra := range s.cfg.SendAs {
		if !(strings.EqualFold(owner, mb.ID) || (mb.Address != "" && strings.EqualFold(owner, mb.Address))) {
			continue
		}
		for _, a := range extra {
			if strings.EqualFold(a, addr) {
				return true
			}
		}
	}
	return false
}

// principalID is the object id of the app's service principal, which Entra
// puts in the oid and sub claims of app-only tokens.
func (s *Server) principalID() string {
	return derivedGUID("serviceprincipal", strings.ToLower(s.cfg.TenantID+"/"+s.cfg.ClientID))
}
