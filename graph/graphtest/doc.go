// Package graphtest is a strict, in-process fake of Microsoft Entra ID (the
// v2.0 token endpoint, OIDC discovery and the Azure IMDS managed-identity
// endpoint) and of the Microsoft Graph mail-send surface (sendMail in JSON and
// MIME form, and the draft, attachment, upload-session and send sequence used
// for large attachments).
//
// It is the oracle that graphrelay's tests and benchmarks run against, so it
// rejects what the real services reject, with the status codes, error codes
// and messages recorded in shared/docs/graph-api.md. It deliberately shares no
// types with the client under test: a bug in the client's JSON model must
// show up as a rejected request here, not be mirrored by a shared struct.
//
// Every listener binds 127.0.0.1:0. HTTPClient talks to the loopback URLs;
// CloudHTTPClient additionally routes the real cloud host names (for example
// login.microsoftonline.us and graph.microsoft.us) to the fake and refuses to
// dial anything else, so a test can exercise national-cloud configuration
// without any chance of reaching the internet.
//
// Mailbox identity: when Config.Mailboxes is empty, any syntactically valid
// address or GUID in the URL is a known mailbox. A mailbox named only by GUID
// then has no known address, so a message that sets From must be covered by
// Config.SendAs; configure Mailboxes with both Address and ID to send by
// object id with a From.
package graphtest
