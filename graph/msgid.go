package graph

import "context"

type messageIDKey struct{}

// WithMessageID returns ctx carrying the SMTP message id that a Graph
// request is made for, so that what handles the request below the client
// (the dry-run outbox) can name the message in its log line.
func WithMessageID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, messageIDKey{}, id)
}

// MessageID returns the message id WithMessageID put in ctx, or "".
func MessageID(ctx context.Context) string {
	id, _ := ctx.Value(messageIDKey{}).(string)
	return id
}
