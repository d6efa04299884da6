package graphtest

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Server is a running fake of Entra ID and Microsoft Graph. All methods are
// safe for concurrent use.
type Server struct {
	cfg        Config
	keys       signingKeys
	tokenKid   string
	clusterKid string
	pki        *pki

	loginAddr, graphAddr, uploadAddr, imdsAddr, fabricAddr string
	miSecret                                               string
	servers                                                []*http.Server
	httpClient, cloudClient                                *http.Client

	closed    chan struct{}
	closeOnce sync.Once
	serving   sync.WaitGroup

	mu             sync.Mutex
	roles          []string
	accessPolicy   []string
	graphFaults    []Fault
	graphOutage    *Fault
	tokenFaults    []TokenFault
	tokenOutage    int
	deliveries     []Delivery
	deliveryNotify chan struct{}
	tokenRequests  []TokenRequest
	graphRequests  []GraphRequest
	uploadRequests []UploadRequest
	inflight       map[string]int
	maxInflight    map[string]int
	usedJTIs       map[string]time.Time
	drafts         map[string]*draft
	sessions       map[string]*uploadSession
	arcKeys        map[string]string // key -> file
}

// Start starts the fake on five loopback listeners (login, Graph and upload
// over TLS, the managed identity hosts over plain HTTP, Service Fabric's
// identity endpoint over TLS). It is meant for benchmarks and non-test
// programs; tests should use New.
func Start(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	keys, err := loadSigningKeys()
	if err != nil {
		return nil, err
	}
	p, err := newPKI()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:            cfg,
		keys:           keys,
		tokenKid:       newKeyID(),
		clusterKid:     newKeyID(),
		pki:            p,
		closed:         make(chan struct{}),
		roles:          cfg.Roles,
		accessPolicy:   cfg.AccessPolicy,
		deliveryNotify: make(chan struct{}),
		inflight:       map[string]int{},
		maxInflight:    map[string]int{},
		usedJTIs:       map[string]time.Time{},
		drafts:         map[string]*draft{},
		sessions:       map[string]*uploadSession{},
		arcKeys:        map[string]string{},
		miSecret:       newGUID(),
	}
	listeners := make([]net.Listener, 0, 5)
	for range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return nil, err
		}
		listeners = append(listeners, ln)
	}
	s.loginAddr = listeners[0].Addr().String()
	s.graphAddr = listeners[1].Addr().String()
	s.uploadAddr = listeners[2].Addr().String()
	s.imdsAddr = listeners[3].Addr().String()
	s.fabricAddr = listeners[4].Addr().String()

	handlers := []http.Handler{
		http.HandlerFunc(s.serveLogin),
		http.HandlerFunc(s.serveGraph),
		http.HandlerFunc(s.serveUpload),
		http.HandlerFunc(s.serveIMDS),
		http.HandlerFunc(s.serveServiceFabric),
	}
	for i, ln := range listeners {
		srv := &http.Server{
			Handler:           handlers[i],
			ReadHeaderTimeout: 30 * time.Second,
			// TLS handshake failures from clients that do not trust the CA
			// are expected in tests; they are not worth printing.
			ErrorLog: log.New(io.Discard, "", 0),
		}
		s.servers = append(s.servers, srv)
		s.serving.Add(1)
		go func(srv *http.Server, ln net.Listener, useTLS bool) {
			defer s.serving.Done()
			if useTLS {
				srv.TLSConfig = p.serverTLSConfig()
				_ = srv.ServeTLS(ln, "", "")
			} else {
				_ = srv.Serve(ln)
			}
		}(srv, ln, i != 3)
	}
	s.httpClient = p.newLoopbackClient()
	s.cloudClient = p.newCloudClient(newCloudDialer(s.loginAddr, s.graphAddr, s.uploadAddr, s.imdsAddr))
	return s, nil
}

// New starts the fake for a test and closes it when the test ends.
func New(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s, err := Start(cfg)
	if err != nil {
		tb.Fatalf("graphtest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Close stops every listener, aborts requests that are sleeping in Latency
// or a fault Delay, and waits for the listeners to finish.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		for _, srv := range s.servers {
			_ = srv.Close()
		}
		s.serving.Wait()
		s.removeArcKeys()
		s.httpClient.CloseIdleConnections()
		s.cloudClient.CloseIdleConnections()
	})
}

// TenantID returns the tenant id the fake serves.
func (s *Server) TenantID() string { return s.cfg.TenantID }

// ClientID returns the registered application (client) id.
func (s *Server) ClientID() string { return s.cfg.ClientID }

// AuthorityURL returns the login base URL, "https://127.0.0.1:PORT".
func (s *Server) AuthorityURL() string { return "https://" + s.loginAddr }

// TokenURL returns the loopback v2.0 token endpoint of the tenant.
func (s *Server) TokenURL() string {
	return s.AuthorityURL() + "/" + s.cfg.TenantID + "/oauth2/v2.0/token"
}

// GraphURL returns the loopback Graph base URL; the API lives under /v1.0.
func (s *Server) GraphURL() string { return "https://" + s.graphAddr }

// UploadURL returns the loopback base URL of the Outlook upload host that
// serves upload sessions created through GraphURL.
func (s *Server) UploadURL() string { return "https://" + s.uploadAddr }

// IMDSURL returns the plain-HTTP IMDS base URL; the token endpoint is
// IMDSURL()+"/metadata/identity/oauth2/token".
func (s *Server) IMDSURL() string { return "http://" + s.imdsAddr }

// HTTPClient returns a client that trusts the fake's CA, for the loopback
// URLs. It ignores proxy environment variables.
func (s *Server) HTTPClient() *http.Client { return s.httpClient }

// CloudHTTPClient returns a client that trusts the fake's CA and routes the
// real cloud host names (login, Graph and Outlook upload hosts of the
// global, US Government and China clouds, and the IMDS address
// 169.254.169.254:80) to the fake. Dialing any other address fails, so a
// test using it cannot reach the internet.
func (s *Server) CloudHTTPClient() *http.Client { return s.cloudClient }

// CAPEM returns the PEM-encoded CA certificate, for subprocesses that trust
// it through SSL_CERT_FILE.
func (s *Server) CAPEM() []byte { return append([]byte{}, s.pki.caPEM...) }

// now is the fake's clock: the real clock shifted by Config.ClockSkew.
func (s *Server) now() time.Time { return time.Now().Add(s.cfg.ClockSkew) }

// sleep waits for d, returning early when the request is cancelled or the
// server closes. It reports whether the full duration elapsed.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}

// SetAccessPolicy replaces the Application Access Policy allow list; nil
// allows every mailbox. Unlike Exchange, where a change can take an hour,
// it applies to the next request.
func (s *Server) SetAccessPolicy(allow []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if allow == nil {
		s.accessPolicy = nil
		return
	}
	s.accessPolicy = append([]string{}, allow...)
}

// SetRoles changes the roles put in tokens issued from now on; nil means
// ["Mail.Send"], an empty slice means no roles claim. Tokens already issued
// keep their roles, as real tokens do until they expire.
func (s *Server) SetRoles(roles []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if roles == nil {
		s.roles = []string{"Mail.Send"}
		return
	}
	s.roles = append([]string{}, roles...)
}

func (s *Server) currentRoles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{}, s.roles...)
}
