package campaign_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/acme/campaign-ingest/campaign"
)

// maxErrorText bounds the text of any error of the client: operation,
// status, a 64-byte code, a 512-byte message and a 512-byte cause.
const maxErrorText = 1280

// checkBoundedError fails unless err's text is bounded, one printable line
// of valid UTF-8.
func checkBoundedError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	s := err.Error()
	switch {
	case len(s) > maxErrorText:
		t.Errorf("error text of %d bytes (at most %d): %.120q…", len(s), maxErrorText, s)
	case !utf8.ValidString(s):
		t.Errorf("error text is not valid UTF-8: %.120q", s)
	case strings.ContainsAny(s, "\n\r\x1b\x00"):
		t.Errorf("error text is not one printable line: %.120q", s)
	}
	var e *campaign.APIError
	if errors.As(err, &e) && (len(e.ErrorCode) > 64 || len(e.Message) > 512) {
		t.Errorf("ErrorCode of %d bytes, Message of %d bytes", len(e.ErrorCode), len(e.Message))
	}
}

// A hostile or broken server cannot put an unbounded or unprintable text
// into an error or a result: 30 KB header values, invalid UTF-8, control
// characters, huge JSON values.
func TestHostileAnswers(t *testing.T) {
	huge := strings.Repeat("A", 30<<10)
	junk := "line one\nline two\r\n\x1b[31mred\x1b[0m \xff\xfe tail " + strings.Repeat("é", 20<<10)
	hugeHeaders := func(w http.ResponseWriter) {
		for _, h := range []string{"Retry-After", "X-Request-Id", "X-Debug", "Content-Language"} {
			w.Header().Set(h, huge)
		}
	}
	tests := []struct {
		name    string
		answer  func(w http.ResponseWriter, r *http.Request)
		token   bool // answer is the token endpoint's; the API accepts
		wantErr bool
		class   campaign.Class
		check   func(t *testing.T, tr campaign.TriggerResponse, err error)
	}{
		{
			name: "429 with 30 KB headers",
			answer: func(w http.ResponseWriter, _ *http.Request) {
				hugeHeaders(w)
				writeBody(w, 429, `{"error_code":"429050","message":"Too many requests"}`)
			},
			wantErr: true, class: campaign.ClassThrottled,
			check: func(t *testing.T, _ campaign.TriggerResponse, err error) {
				if d, ok := campaign.RetryAfterOf(err); ok {
					t.Errorf("RetryAfterOf = %v from a 30 KB Retry-After", d)
				}
			},
		},
		{
			name: "200 with 30 KB headers",
			answer: func(w http.ResponseWriter, _ *http.Request) {
				hugeHeaders(w)
				writeBody(w, 200, acceptedBody)
			},
			check: func(t *testing.T, tr campaign.TriggerResponse, _ error) {
				if tr.Kind() != campaign.TriggerAccepted {
					t.Errorf("got %+v", tr)
				}
			},
		},
		{
			name: "503 with a 30 KB unprintable gateway message",
			answer: func(w http.ResponseWriter, _ *http.Request) {
				hugeHeaders(w)
				writeJSON(w, 503, map[string]string{"error_code": "503000", "message": junk})
			},
			wantErr: true, class: campaign.ClassTransient,
		},
		{
			name: "403 with a 30 KB error_code",
			answer: func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, 403, map[string]string{"error_code": huge + "\n", "message": "x"})
			},
			wantErr: true, class: campaign.ClassForbidden,
		},
		{
			name:    "500 with a huge body that is not JSON",
			answer:  func(w http.ResponseWriter, _ *http.Request) { writeBody(w, 500, strings.Repeat(junk, 20)) },
			wantErr: true, class: campaign.ClassServerError,
		},
		{
			name: "200 with a huge number as status",
			answer: func(w http.ResponseWriter, _ *http.Request) {
				writeBody(w, 200, `{"requestId":3520,"status":`+strings.Repeat("9", 500_000)+`}`)
			},
			wantErr: true, class: campaign.ClassTransient,
		},
		{
			name: "200 with a 30 KB request id",
			answer: func(w http.ResponseWriter, _ *http.Request) {
				writeBody(w, 200, `{"requestId":"`+huge+`","info":"x","status":"Success"}`)
			},
			wantErr: true, class: campaign.ClassTransient,
		},
		{
			name: "200 with a 30 KB unknown status",
			answer: func(w http.ResponseWriter, _ *http.Request) {
				writeBody(w, 200, `{"requestId":3520,"info":"x","status":"`+huge+`"}`)
			},
			wantErr: true, class: campaign.ClassTransient,
		},
		{
			name: "200 with a 900 KB info of invalid UTF-8",
			answer: func(w http.ResponseWriter, _ *http.Request) {
				writeBody(w, 200, `{"requestId":3520,"info":"`+strings.Repeat("\xff", 900<<10)+`","status":"Success"}`)
			},
			check: func(t *testing.T, tr campaign.TriggerResponse, _ error) {
				if tr.Kind() != campaign.TriggerAccepted || len(tr.Info) > campaign.MaxInfoLen || !utf8.ValidString(tr.Info) {
					t.Errorf("got kind %v, info of %d bytes (valid UTF-8: %v)", tr.Kind(), len(tr.Info), utf8.ValidString(tr.Info))
				}
			},
		},
		{
			name: "token endpoint: 30 KB unprintable OAuth error",
			answer: func(w http.ResponseWriter, _ *http.Request) {
				hugeHeaders(w)
				writeJSON(w, 401, map[string]string{"error": huge, "error_description": junk})
			},
			token:   true,
			wantErr: true, class: campaign.ClassUnauthorized,
		},
		{
			name: "token endpoint: huge JSON without a token",
			answer: func(w http.ResponseWriter, _ *http.Request) {
				writeBody(w, 200, `{"token_type":"bearer","x":"`+strings.Repeat(junk, 10)+`"}`)
			},
			token:   true,
			wantErr: true, class: campaign.ClassTransient,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, func(w http.ResponseWriter, r *http.Request, _ int) { tt.answer(w, r) })
			if tt.token {
				g.tokenAnswer = tt.answer
			}
			tr, err := g.client(t, nil).Trigger(context.Background(), "acme", "XDM44")
			if (err != nil) != tt.wantErr {
				t.Fatalf("got %v, want an error: %v", err, tt.wantErr)
			}
			if c := campaign.Classify(err); err != nil && c != tt.class {
				t.Errorf("Classify = %v, want %v: %.200s", c, tt.class, err)
			}
			checkBoundedError(t, err)
			if tt.check != nil {
				tt.check(t, tr, err)
			}
		})
	}
}

// A server that sends garbage instead of an HTTP answer makes a transport
// error whose text quotes it; the client's error text stays bounded.
func TestGarbageStatusLine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				_, _ = http.ReadRequest(br)
				_, _ = conn.Write([]byte("HTTP/1.1 2" + strings.Repeat("\x1b[7m\xff garbage ", 3000) + "\r\n\r\n"))
			}()
		}
	}()
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"access_token": "t", "token_type": "bearer", "expires_in": 86399})
	}))
	t.Cleanup(tokens.Close)
	c, err := campaign.New(campaign.Config{
		BaseURL: "http://" + ln.Addr().String(),
		IMS:     campaign.IMSConfig{TokenURL: tokens.URL + tokenPath, ClientID: testClientID, ClientSecret: testSecret},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Trigger(context.Background(), "acme", "XDM44")
	if campaign.Classify(err) != campaign.ClassTransient {
		t.Errorf("got %v (class %v), want a transient error", err, campaign.Classify(err))
	}
	checkBoundedError(t, err)
}
