package graphtest

import (
	"strings"
	"time"
)

// Delivery is one message Graph accepted for sending.
type Delivery struct {
	Mailbox string // the {id} from the URL path, as sent
	// Kind is "json" (sendMail with a JSON body), "mime" (sendMail with a
	// base64 MIME body) or "draft" (draft, attachments and uploads, then
	// /send).
	Kind            string
	ClientRequestID string
	RequestID       string
	SaveToSentItems bool
	// Message is the parsed message for every kind. For "mime" it is parsed
	// from the decoded MIME: Subject, From, To/Cc/Bcc, ReplyTo, the body,
	// X- headers (as Headers) and attachments.
	Message Message
	MIME    []byte // decoded MIME, kind "mime" only
	// DraftID is the id of the sent draft, kind "draft" only.
	DraftID string
	At      time.Time // fake clock
}

// Message is a message as the fake understood it.
type Message struct {
	Subject  string
	BodyType string // "text" or "html"
	Body     string
	From     *Address
	// Sender is the sender property (JSON) or Sender header (MIME), when
	// set. Graph normally fills it in itself.
	Sender               *Address
	To, Cc, Bcc, ReplyTo []Address
	Importance           string // "low", "normal" or "high"
	InternetMessageID    string
	Categories           []string
	Headers              []Header // internetMessageHeaders
	// ExtendedProperties are singleValueExtendedProperties {id, value} as
	// Name/Value.
	ExtendedProperties           []Header
	ReadReceipt, DeliveryReceipt bool
	Attachments                  []Attachment // decoded
}

// Address is an emailAddress.
type Address struct{ Name, Address string }

// Header is a name/value pair.
type Header struct{ Name, Value string }

// Attachment is a decoded file attachment.
type Attachment struct {
	Name, ContentType, ContentID string
	IsInline                     bool
	Content                      []byte
}

// TokenRequest records one request to the token endpoint or to IMDS.
type TokenRequest struct {
	Host, Path   string
	GrantType    string
	ClientID     string
	Scope        string // the scope form field, or the IMDS resource
	AssertionAlg string
	// AssertionKid is the x5t#S256 or x5t header value of a certificate
	// assertion, or the kid of a federated assertion.
	AssertionKid string
	// AuthKind is "assertion", "secret", "federated", "imds",
	// "appservice", "arc", "cloudshell", "servicefabric" or "" when
	// unknown.
	AuthKind string
	Status   int
	Error    string // e.g. "AADSTS700027", an IMDS error, or ""
	At       time.Time
}

// GraphRequest records one Graph API request (not upload PUTs). Status 499
// marks a request whose client went away during a fault Delay and that the
// fake therefore did not process; status 0 a connection the fake reset
// (Fault.Reset) instead of answering.
type GraphRequest struct {
	Method, Path, Mailbox      string
	ClientRequestID, RequestID string
	Status                     int
	Start, End                 time.Time
}

// UploadRequest records one PUT or DELETE on an upload URL.
type UploadRequest struct {
	Method        string
	Path          string
	ContentRange  string
	Bytes         int  // body bytes received
	Authorization bool // an Authorization header was (wrongly) sent
	Status        int
	At            time.Time
}

// Deliveries returns the accepted messages in acceptance order.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery{}, s.deliveries...)
}

// WaitDeliveries waits until at least n messages were accepted or timeout
// passes, and returns what was recorded by then.
func (s *Server) WaitDeliveries(n int, timeout time.Duration) []Delivery {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if len(s.deliveries) >= n {
			out := append([]Delivery{}, s.deliveries...)
			s.mu.Unlock()
			return out
		}
		notify := s.deliveryNotify
		s.mu.Unlock()
		select {
		case <-notify:
		case <-deadline.C:
			return s.Deliveries()
		}
	}
}

// TokenRequests returns every recorded token request.
func (s *Server) TokenRequests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TokenRequest{}, s.tokenRequests...)
}

// GraphRequests returns every recorded Graph API request.
func (s *Server) GraphRequests() []GraphRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]GraphRequest{}, s.graphRequests...)
}

// UploadRequests returns every recorded upload-URL request.
func (s *Server) UploadRequests() []UploadRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]UploadRequest{}, s.uploadRequests...)
}

// MaxInFlight returns the highest number of concurrently in-flight Graph
// requests seen for the mailbox (address or object id), counting requests
// that were sleeping in Latency or a fault Delay.
func (s *Server) MaxInFlight(mailbox string) int {
	key := s.inflightKey(mailbox)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInflight[key]
}

// Reset clears recordings, queued faults, outages and the in-flight maxima.
// Drafts, upload sessions and runtime knobs (roles, access policy) stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries = nil
	s.tokenRequests = nil
	s.graphRequests = nil
	s.uploadRequests = nil
	s.graphFaults = nil
	s.graphOutage = nil
	s.tokenFaults = nil
	s.tokenOutage = 0
	s.maxInflight = map[string]int{}
	for k, v := range s.inflight {
		if v > 0 {
			s.maxInflight[k] = v
		}
	}
}

func (s *Server) recordDelivery(d Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries = append(s.deliveries, d)
	close(s.deliveryNotify)
	s.deliveryNotify = make(chan struct{})
}

func (s *Server) recordToken(tr TokenRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenRequests = append(s.tokenRequests, tr)
}

func (s *Server) recordGraph(gr GraphRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.graphRequests = append(s.graphRequests, gr)
}

func (s *Server) recordUpload(ur UploadRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uploadRequests = append(s.uploadRequests, ur)
}

// inflightKey maps a mailbox reference to the key its concurrency is
// counted under, so that the address and the object id of one mailbox
// share a counter, as they share Exchange's MailboxConcurrency budget.
func (s *Server) inflightKey(ref string) string {
	if mb, ok := s.lookupMailbox(ref); ok {
		return strings.ToLower(mb.ID)
	}
	return strings.ToLower(ref)
}

// enterFlight counts a request in and returns the new in-flight count.
func (s *Server) enterFlight(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight[key]++
	n := s.inflight[key]
	if n > s.maxInflight[key] {
		s.maxInflight[key] = n
	}
	return n
}

func (s *Server) leaveFlight(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight[key]--
	if s.inflight[key] == 0 {
		delete(s.inflight, key)
	}
}
