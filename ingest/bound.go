package ingest

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

const ellipsis = "…"

// Bounded returns s cut to at most n bytes of printable UTF-8, for a log
// line, an event field, a header or an error message: invalid bytes and
// characters that are not printable become U+FFFD, and a string that had
// to be cut ends in "…" (within the n bytes). n is at least 8.
func Bounded(s string, n int) string {
	if len(s) <= n && utf8.ValidString(s) && strings.IndexFunc(s, notPrintable) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), n+utf8.UTFMax))
	for _, r := range s {
		if notPrintable(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		if b.Len() > n {
			break
		}
	}
	t := b.String()
	if len(t) <= n {
		return t
	}
	cut := max(n-len(ellipsis), 0)
	for cut > 0 && !utf8.RuneStart(t[cut]) {
		cut--
	}
	return t[:cut] + ellipsis
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }
