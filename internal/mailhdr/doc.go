// Package mailhdr reads mail headers and addresses, tolerantly, in one way
// for all of graphrelay. The SMTP front end, the policy, the MIME→Graph
// converter, notices and "graphrelay sendmail" share it, so that a header
// block splits (ReadBlock), a From reads (Senders), an address compares and
// is sent (Canonical, Key, Qualify), and a subject, a display name or a file
// name decodes the same way wherever graphrelay looks at it.
//
// Mail from printers, NAS units, cron jobs and old applications breaks the
// RFCs in a handful of recurring ways, and every function here prefers a
// readable result to an error:
//
//   - RFC 2047 encoded words are decoded in any charset that x/text knows,
//     also when they are malformed: a missing "?=" terminator, words glued
//     to the surrounding text, spaces inside Q-encoded text, base64 split
//     across words at any offset, and multibyte characters split across
//     words (adjacent words of one charset are joined as bytes first).
//   - Raw 8-bit bytes (no encoded words, no SMTPUTF8) are read as UTF-8
//     where they form valid UTF-8 and as Windows-1252 elsewhere, byte
//     sequence by byte sequence, so a subject that mixes the two still
//     reads correctly and no byte is ever dropped.
//   - Charset labels are looked up in the WHATWG index first (so that
//     "iso-8859-1" means Windows-1252, as it does in practice), then in the
//     IANA index, then through aliases for names that real mailers emit
//     (ks_c_5601-1987, cp932, cp949, euc-cn, iso-2022-jp-2, ...). UTF-16
//     and UTF-32 honour a BOM and otherwise guess the byte order; UTF-7 is
//     decoded here because x/text has no decoder for it. An unknown, empty
//     or bogus label falls back to the 8-bit rule above.
//   - Address lists accept display names with '@' or unquoted specials,
//     "Last, First <addr>" without quotes, encoded or raw 8-bit names,
//     bare addresses, group syntax, comments, and missing commas between
//     angle addresses.
//   - Media-type parameters accept RFC 2231 continuations and charsets,
//     unquoted values with spaces, and unterminated quotes.
//
// Nothing here panics on any input, and all functions run in time linear
// in the input (the fuzz targets check both).
package mailhdr
