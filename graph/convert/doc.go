// Package convert turns one RFC 5322 message, as an SMTP client sent it,
// into the Graph message resource for POST /users/{id}/sendMail.
//
// The goal is fidelity to what the sender meant, for mail from printers,
// scanners, NAS units, cron jobs and legacy applications, which break the
// MIME rules in every way the test corpus records. Conversion never rejects
// a message that has any content: it decodes what it can, keeps every byte
// of every attachment, and reports problems as warnings. Each rule below is
// tested by name in this package's tests.
//
// # Parsing
//
// The message is read into memory once (at most Options.MaxBytes). Parts are
// slices of that buffer. Header blocks become go-message textproto.Headers,
// but the lines are split by a tolerant reader, because go-message's
// textproto.ReadHeader and multipart reader reject about a fifth of the
// corpus (mbox "From " lines, malformed header lines, mixed line endings,
// missing delimiters).
//
//  1. Line endings may be CRLF, bare LF, or mixed, in headers and between
//     parts alike. A UTF-8 BOM, blank lines and an mbox "From " line before
//     the first header field are skipped.
//  2. A header ends at an empty line or a line of blanks. A line that is
//     not a field ends it too and starts the body (warning), unless more
//     fields and an empty line follow within a few lines; then it is a lost
//     folding indent and joins the field above.
//  3. A delimiter is "--boundary" at the start of a line followed by a
//     blank, the end of the line, or "--" (close); the rest of the line is
//     ignored (RFC 2046 §5.1.1). Preamble and epilogue are dropped. A
//     missing close delimiter ends the last part at the end of the body
//     (warning), less the body's final line break, which belongs to the
//     delimiter that is missing; delimiters after a premature close still
//     open parts.
//  4. A multipart without a usable boundary parameter gets its boundary
//     guessed from the first "--token" line that opens parts (warning);
//     with no parts at all its body is read as text/plain (warning).
//  5. No Content-Type means text/plain (message/rfc822 inside
//     multipart/digest); an invalid one reads as text/plain (RFC 2045
//     §5.2). Parameters use mailhdr.ParseMediaType (RFC 2231, bad quoting).
//
// # Limits (never a panic, never a hang, bounded memory)
//
//  6. Multipart nesting deeper than Options.MaxDepth (20): the subtree is
//     kept whole, with its header, as one attachment "nested-parts-N.eml"
//     (message/rfc822), and a warning. A mail client opening it shows the
//     parts inside.
//  7. More than Options.MaxParts (1000) entities: the rest of each open
//     multipart is kept as one attachment "remaining-parts-N.eml", a valid
//     MIME message with the original boundary, and a warning. No part below
//     the limit is lost; none above it is dropped.
//  8. A header block over Options.MaxHeaderBytes (1 MiB) is an error at the
//     top level; in a part it makes the part an opaque attachment.
//  9. Work is linear in the input: no rescanning per delimiter, encoded
//     word or nesting level (body choice is memoised).
//
// # Header fields
//
//  10. Subject and display names: RFC 2047 encoded words in any charset,
//     malformed ones too (see mailhdr.DecodeText); raw 8-bit text as UTF-8
//     where valid, else Windows-1252. Control characters become spaces. A
//     subject over 255 UTF-16 units is cut, with a warning that the relay
//     logs ("conversion warning ... subject longer than 255 characters").
//     The limit is reported for Exchange Web Services and is what Outlook
//     lets a user type; it has not been verified against Graph's sendMail
//     (no tenant is available to this project, and Graph's documentation
//     names no limit), so the cut is the conservative choice: a cut subject
//     still delivers, a refused one would dead-letter.
//  11. Recipients: the envelope is authoritative. Each RCPT TO, in
//     envelope order and once, goes to toRecipients if To lists it, else
//     to ccRecipients if Cc lists it, else to bccRecipients. Header
//     addresses outside the envelope receive nothing. Display names come
//     from the header entry with the same address, cleaned by
//     mailhdr.CleanDisplayName: an at sign or a lookalike of one (U+FF20,
//     U+FE6B) is spelt " at ", since Graph refuses or misreads names with
//     one. Addresses compare case-insensitively in local part and domain
//     (Exchange Online does; a false mismatch would turn a visible To into
//     a Bcc) and with domains in one form (mailhdr.Key: A-labels). An
//     empty envelope falls back to the header To, Cc and Bcc.
//  12. Reply-To maps to replyTo, address by address: one without a domain
//     takes Envelope.QualifyDomain ("root" from cron), and only canonical
//     mailboxes (mailhdr.Canonical) are kept; an encoded word or a phrase
//     where the address should be is left out with a warning. Message.From
//     is left unset (that is the policy layer's decision);
//     Result.HeaderFrom carries the From as the policy saw it
//     (mailhdr.Senders).
//  13. Importance: the Importance header (high, normal, low), else
//     X-Priority (1-2 high, 3 normal, 4-5 low, "1 (Highest)" accepted),
//     else X-MSMail-Priority, else Priority (urgent high, non-urgent low).
//     The first header with a recognisable value decides; normal or absent
//     omits the field.
//  14. internetMessageHeaders: at most Options.MaxHeaders (Graph's 5) X-
//     headers: first X-Mailer (which device sent it), X-Auto-Response-
//     Suppress (stops Exchange auto-replies to robots), X-Originating-IP,
//     then the others in message order, and X-Priority/X-MSMail-Priority
//     last (importance carries them). Names as written, each once;
//     X-MS-*, X-Microsoft-*, X-Forefront-*, X-Exchange-*, X-Spam*, X-Virus*
//     are never carried (Exchange trusts its own, and foreign verdicts
//     mislead filters). Values are unfolded, decoded, made one line, and cut
//     so "Name: value" fits 998 octets; names over 76 octets and empty
//     values are skipped. No qualifying header omits the field (Graph
//     refuses an empty collection).
//  15. Disposition-Notification-To sets isReadReceiptRequested.
//  16. In-Reply-To (first message ID) and References (all IDs, first plus
//     the most recent within 4096 bytes) go to singleValueExtendedProperties
//     "String 0x1042" and "String 0x1039", since Graph refuses them as
//     internet headers.
//
// # Body
//
//  17. Transfer encodings: base64 skips whitespace, skips other junk
//     (warning), restarts after padding, and keeps the whole bytes of a
//     truncated end (warning); quoted-printable accepts lower-case hex,
//     keeps a stray "=", removes trailing blanks; 7bit/8bit/binary and
//     spellings like "7-bit" pass through; x-uuencode is decoded; unknown
//     encodings are read as 8bit (warning). Multipart entities ignore
//     their Content-Transfer-Encoding, as go-message does.
//  18. Charsets: the charset parameter, via mailhdr.DecodeCharset (every
//     x/text charset plus aliases: ISO-8859-x, Windows-125x, ISO-2022-JP,
//     Shift_JIS, EUC-JP, GB2312/GBK, Big5, KOI8-R, ks_c_5601-1987,
//     UTF-16/32 with BOM detection, UTF-7). An unknown label reads as UTF-8
//     where valid, else Windows-1252 (warning). An HTML part without a
//     usable parameter uses its <meta> charset, and the <meta> declaration
//     is rewritten to utf-8 because the body is now Unicode.
//  19. format=flowed text is unwrapped (RFC 3676), so Graph's Text body
//     shows paragraphs instead of hard breaks at 72 columns.
//  20. Characters Exchange cannot store (XML 1.0 forbidden) are replaced:
//     NUL removed, form feed and vertical tab become line breaks, other
//     C0 controls and U+FFFE/U+FFFF become U+FFFD.
//  21. Body choice. Candidates are text/plain, text/html and text/enriched
//     leaves not marked as files (no "attachment" disposition, no file
//     name). multipart/alternative takes its richest alternative that Graph
//     can show (HTML, then plain, then enriched; a whitespace-only
//     candidate ranks last; the last among equals, per RFC 2046), also when
//     it is nested in multipart/related or mixed. multipart/related takes
//     its root (the start parameter, else the first part). Other
//     multiparts take their first non-empty candidate; further text parts
//     become attachments, never appended to the body. Text/html becomes
//     contentType HTML with its cid: references (spelt as rule 26 says);
//     anything else Text. No candidate gives an empty Text body, except:
//     (21a) a message without a non-empty body candidate takes as its body the
//     first text/plain, text/html or text/enriched part, in document order,
//     that carries a file name but is not marked "attachment" (cpython's
//     msg_04: "Content-Disposition: inline; filename=msg.txt"), because
//     Thunderbird, Apple Mail and Outlook show such a part as the message
//     text. It stays an attachment as well, so the named file arrives as
//     sent. A part with a NUL byte in its first 8 KiB only claims to be
//     text and is not taken.
//
// # Attachments
//
//  22. Every leaf that is not the body becomes a fileAttachment with
//     @odata.type, in document order, except empty text parts and the other
//     renderings of the body in a multipart/alternative: every text/* part
//     of an alternative that was not chosen (text/plain, text/enriched,
//     text/watch-html, text/x-amp-html), unless the sender marked it
//     "attachment". A text/calendar alternative is such a rendering only
//     when the message carries the same calendar elsewhere (the invite.ics
//     beside an Outlook or Gmail invitation); otherwise it is the only
//     carrier of the invitation and is kept. Non-text alternatives (an
//     image, a PDF) are kept.
//  23. contentBytes are the part with only its transfer encoding removed:
//     text attachments keep their charset, and a message/rfc822 or
//     message/global part keeps its bytes unchanged. contentType is the
//     lower-case type/subtype without parameters. winmail.dat
//     (application/ms-tnef) and unknown types pass through like any file.
//  24. The name: Content-Disposition filename (RFC 2231 form with
//     continuations and charset first, then the plain form), then the
//     Content-Type name (same), each possibly RFC 2047-encoded inside
//     quotes or raw 8-bit; for an attached message its Subject plus ".eml";
//     else a generated "image-2.png", "message-3.eml", "attachment-1.pdf"
//     (N is the attachment's position), or the name clients expect
//     (winmail.dat, smime.p7s, signature.asc).
//  25. Names are sanitised but keep their Unicode: a full path becomes its
//     last element, other "/" and "\" become "_", control characters and
//     bidirectional overrides (extension spoofing) are removed, and the
//     name is cut to 255 UTF-16 units keeping the extension. A line break
//     inside a name (an RFC 2231 "%0A", an encoded CRLF) becomes a blank,
//     so the words on either side stay apart; folding is still unfolded.
//  26. Inline: a part whose Content-ID the chosen HTML body references as
//     cid: (in any attribute or CSS url(), compared case-insensitively and
//     URL-decoded, as RFC 2392 says) gets isInline true and contentId set
//     to its Content-ID without brackets, whatever its Content-Disposition
//     says, and every reference to it in the HTML is rewritten to that same
//     spelling ("%", quotes, blanks, angle brackets and parentheses
//     percent-encoded). Outlook compares the two literally, so one spelling
//     on both sides resolves the image in every reader whatever case or
//     %40 the sender used. References no part answers are left as written;
//     unreferenced parts are regular attachments.
//  27. Deferred content: with Options.DeferAttachments, a base64 or
//     7bit/8bit/binary attachment (or a subtree kept whole by a limit)
//     whose encoded body reaches that size keeps its bytes in the input.
//     Result.Deferred gives its decoded size and reads it back, decoded by
//     the same lenient rules (17), from the spooled message, so a relay can
//     upload a large file chunk by chunk without a decoded copy in memory.
//     Every other attachment is then a copy, so no result holds the input.
//
// # MIME passthrough
//
// PrepareMIME is the other way through: for delivery format "mime" the
// message is not converted. Only its top-level header is rewritten (From to
// the mailbox, recipients to the envelope, Bcc from the envelope), and the
// body goes to Graph byte for byte. The rule is documented in
// passthrough.go and tested in passthrough_test.go.
//
// # Errors
//
// Convert returns *Error only when no message can be produced: empty input,
// a top-level header block over the limit, or input over Options.MaxBytes.
// *Error has InvalidContent() (always true; the SMTP layer answers 554
// 5.6.0) and TooLarge() (552 5.3.4), and its text names the reason only. A
// read error from the reader is returned wrapped, as it is not the
// message's fault.
package convert
