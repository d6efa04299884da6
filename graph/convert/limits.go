package convert

// Defaults and hard limits. They bound the work and memory Convert spends on
// one message: the input is read once into memory (never more than MaxBytes),
// parts are slices of that buffer, and only leaves that end up in the Graph
// message are decoded.
const (
	// DefaultMaxDepth limits multipart nesting. Real mail rarely nests
	// deeper than 6 (the MIME torture test); recursion bombs nest
	// thousands of levels.
	DefaultMaxDepth = 20
	// DefaultMaxParts limits the MIME entities parsed in one message. The
	// largest real message in the corpus has a little over 300 attachments.
	DefaultMaxParts = 1000
	// GraphMaxHeaders is Graph's limit on internetMessageHeaders per
	// message (error InvalidInternetMessageHeaderCollection above it).
	GraphMaxHeaders = 5
	// DefaultMaxHeaderBytes bounds a header block, at the top level and in
	// every part, as go-message's own default does.
	DefaultMaxHeaderBytes = 1 << 20
	// DefaultMaxBytes bounds the whole message. Exchange Online accepts at
	// most 150 MB per message once encoded, which is about 200 MB of MIME;
	// the SMTP layer's SIZE limit is normally far lower.
	DefaultMaxBytes = 256 << 20

	// maxSubjectUTF16 is the subject length Exchange stores and Outlook
	// shows (255 UTF-16 code units); EWS rejects longer subjects, so a
	// longer one is cut with a warning rather than risking a 400.
	maxSubjectUTF16 = 255
	// maxNameUTF16 is the longest attachment name kept: the Windows and
	// Exchange limit for a file name component.
	maxNameUTF16 = 255
	// maxHeaderLine bounds an x-header as "Name: value" on one unfolded
	// line: RFC 5322's 998 octets. Longer values are cut at a character
	// boundary.
	maxHeaderLine = 998
	// maxHeaderName skips x-headers whose name alone would not fit a
	// folded line (RFC 5322 recommends 78 octets per line).
	maxHeaderName = 76
	// maxReferences bounds the References property. The first and the most
	// recent message IDs are kept, as RFC 5322 §3.6.4 suggests for long
	// chains, because threading needs those.
	maxReferences = 4096
	// maxWarnings bounds Result.Warnings for pathological input.
	maxWarnings = 50
)

// Options tune the limits. The zero value is the recommended setting.
type Options struct {
	// MaxDepth is the multipart nesting limit (default 20). A subtree
	// below it is kept whole as one .eml attachment.
	MaxDepth int
	// MaxParts is the limit on MIME entities (default 1000). Parts beyond
	// it are kept together as one .eml attachment.
	MaxParts int
	// MaxHeaders is the number of X- headers carried into
	// internetMessageHeaders: Graph's 5 when zero or above 5, none when
	// negative.
	MaxHeaders int
	// MaxHeaderBytes bounds each header block (default 1 MiB). A top-level
	// header above it is an error; a part's header above it makes the part
	// an opaque attachment.
	MaxHeaderBytes int
	// MaxBytes bounds the input (default 256 MiB); above it Convert fails
	// with an error whose TooLarge method reports true.
	MaxBytes int64
	// DeferAttachments, when positive, leaves in the input the content of
	// every base64 or 7bit/8bit/binary attachment whose encoded body has at
	// least this many bytes: its ContentBytes is empty and Result.Deferred
	// says where to read it (rule 27). Attachments kept in memory are then
	// copies, never slices of the input, so the input buffer is garbage
	// once Convert returns. Zero decodes everything into memory.
	DeferAttachments int64
}

func (o Options) withDefaults() Options {
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxParts <= 0 {
		o.MaxParts = DefaultMaxParts
	}
	switch {
	case o.MaxHeaders < 0:
		o.MaxHeaders = 0
	case o.MaxHeaders == 0 || o.MaxHeaders > GraphMaxHeaders:
		o.MaxHeaders = GraphMaxHeaders
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	return o
}
