package mailhdr

import (
	"strings"
	"sync"
)

// domainCacheMax bounds the domains remembered: a relay sees the same few
// domains in every message, and a client sending many distinct ones only
// empties the cache now and then.
const domainCacheMax = 1024

// domainCache remembers the canonical form of the domains accepted last.
// canonicalDomain is a pure function of its input, and its IDNA check was
// about 5% of the daemon's CPU per message, for the same few domains.
// Refused domains are not remembered: they are rare, and recomputing keeps
// their errors fresh.
var domainCache = struct {
	mu sync.Mutex
	m  map[string]string
}{m: map[string]string{}}

// canonicalDomain is canonicalDomainUncached, remembered.
func canonicalDomain(domain string) (string, error) {
	domainCache.mu.Lock()
	d, ok := domainCache.m[domain]
	domainCache.mu.Unlock()
	if ok {
		return d, nil
	}
	d, err := canonicalDomainUncached(domain)
	if err != nil {
		return "", err
	}
	domainCache.mu.Lock()
	if len(domainCache.m) >= domainCacheMax {
		clear(domainCache.m)
	}
	// The key is cloned: domain may share memory with a whole command line.
	domainCache.m[strings.Clone(domain)] = d
	domainCache.mu.Unlock()
	return d, nil
}
