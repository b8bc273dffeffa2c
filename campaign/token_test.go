package campaign

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// The cache hands out one token until shortly before its expiry (5 minutes,
// or a quarter of its lifetime when shorter), and fetches a fresh one after
// invalidate of the cached token only.
func TestCachedTokens(t *testing.T) {
	start := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		lifetime time.Duration // 0: no expiry
		steps    []step
	}{
		{"24h token", 24 * time.Hour, []step{
			{at: 0, want: "t1"},
			{at: time.Hour, want: "t1"},
			{at: 24*time.Hour - 5*time.Minute - time.Second, want: "t1"},
			{at: 24*time.Hour - 5*time.Minute, want: "t2"},
		}},
		{"short token", 8 * time.Second, []step{
			{at: 0, want: "t1"},
			{at: 5 * time.Second, want: "t1"},
			{at: 6 * time.Second, want: "t2"},
		}},
		{"no expiry", 0, []step{
			{at: 0, want: "t1"},
			{at: 1000 * time.Hour, want: "t1"},
		}},
		{"invalidate", 24 * time.Hour, []step{
			{at: 0, want: "t1"},
			{at: 0, invalidate: "t0", want: "t1"}, // not the cached token: kept
			{at: 0, invalidate: "t1", want: "t2"},
			{at: 0, want: "t2"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := start
			fetches := 0
			c := newCachedTokens(func(context.Context) (*oauth2.Token, error) {
				fetches++
				tok := &oauth2.Token{AccessToken: fmt.Sprintf("t%d", fetches)}
				if tt.lifetime > 0 {
					tok.Expiry = now.Add(tt.lifetime)
				}
				return tok, nil
			})
			c.now = func() time.Time { return now }
			for i, s := range tt.steps {
				now = start.Add(s.at)
				if s.invalidate != "" {
					c.invalidate(s.invalidate)
				}
				got, err := c.token(context.Background())
				if err != nil || got.AccessToken != s.want {
					t.Fatalf("step %d at +%v: got %v, %v; want %s", i, s.at, got, err, s.want)
				}
			}
		})
	}
}

type step struct {
	at         time.Duration
	invalidate string
	want       string
}

func TestJoinScopes(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"openid"}, "openid"},
		{[]string{"openid", " AdobeID ", "", "campaign_sdk"}, "openid,AdobeID,campaign_sdk"},
	}
	for _, tt := range tests {
		if got := joinScopes(tt.in); got != tt.want {
			t.Errorf("joinScopes(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
