package natsconn

import (
	"net/url"
	"strings"
)

// redact hides user info (user and password, or a token) in a list of
// server URLs. A URL that does not parse is replaced by a placeholder,
// since it may hold a secret that url.Parse could not isolate.
func redact(urls string) string {
	if urls == "" {
		return ""
	}
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "://") {
			p = "nats://" + p // as nats.go reads host:port
		}
		u, err := url.Parse(p)
		switch {
		case err != nil:
			parts[i] = "[unparsable URL]"
		case u.User != nil:
			u.User = url.User("redacted")
			parts[i] = u.String()
		default:
			parts[i] = p
		}
	}
	return strings.Join(parts, ",")
}
