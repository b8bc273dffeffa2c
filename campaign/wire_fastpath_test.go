package campaign

import (
	"encoding/json"
	"testing"
)

// TestDecodeFastPaths: the decoding shortcuts (strings without escapes,
// all-digit request ids) give what encoding/json gives, and step aside for
// everything else.
func TestDecodeFastPaths(t *testing.T) {
	tests := []struct {
		in     string
		simple bool // simpleString takes it
	}{
		{in: `"Mapping Id: XDM44. "`, simple: true},
		{in: `""`, simple: true},
		{in: `"ünïcode"`, simple: true},
		{in: `"a\"b"`, simple: false},
		{in: `"a\u00e9"`, simple: false},
		{in: `"tab\tx"`, simple: false},
		{in: "\"bad\xffutf8\"", simple: false},
		{in: `"unterminated`, simple: false},
		{in: `3520`, simple: false},
	}
	for _, tt := range tests {
		got, ok := simpleString([]byte(tt.in))
		if ok != tt.simple {
			t.Errorf("simpleString(%s) ok = %v, want %v", tt.in, ok, tt.simple)
			continue
		}
		var want string
		if ok && json.Unmarshal([]byte(tt.in), &want) == nil && got != want {
			t.Errorf("simpleString(%s) = %q, encoding/json gives %q", tt.in, got, want)
		}
	}
	ids := []struct {
		in      string
		want    RequestID
		wantErr bool
	}{
		{in: `3520`, want: "3520"},
		{in: `"3520"`, want: "3520"},
		{in: `0`, want: "0"},
		{in: `0012`, wantErr: true},
		{in: `12abc`, wantErr: true},
		{in: `1e3`, want: "1e3"},
		{in: `"id\u002d7"`, want: "id-7"},
		{in: `null`, want: ""},
	}
	for _, tt := range ids {
		var r RequestID
		err := r.UnmarshalJSON([]byte(tt.in))
		if (err != nil) != tt.wantErr || err == nil && r != tt.want {
			t.Errorf("RequestID(%s) = %q, %v; want %q, error %v", tt.in, r, err, tt.want, tt.wantErr)
		}
	}
}
