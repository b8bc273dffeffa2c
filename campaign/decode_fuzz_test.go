package campaign

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// maxFuzzBody bounds the fuzzed bodies like the client bounds answers.
const maxFuzzBody = 64 << 10

// addSeeds adds the documented bodies of testdata/<prefix>*.json to f.
func addSeeds(f *testing.F, prefix string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", prefix+"*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds %s*.json: %v", prefix, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzDecodeTrigger checks that decoding never panics, that every failure
// wraps ErrMalformed, and that a decoded answer survives a round trip.
func FuzzDecodeTrigger(f *testing.F) {
	addSeeds(f, "trigger_")
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxFuzzBody {
			t.Skip()
		}
		r, err := DecodeTrigger(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if r.Status == "" {
			t.Fatal("decoded without a status")
		}
		if k := r.Kind(); (k == TriggerAccepted || k == TriggerBusy) && r.RequestID == "" {
			t.Fatalf("kind %v without requestId", k)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", r, err)
		}
		again, err := DecodeTrigger(b)
		if err != nil || again != r {
			t.Fatalf("round trip of %s: got %+v, %v; want %+v", b, again, err, r)
		}
	})
}

// FuzzDecodeStatus checks that decoding never panics, that every failure
// wraps ErrMalformed, and that a decoded answer survives a round trip.
func FuzzDecodeStatus(f *testing.F) {
	addSeeds(f, "status_")
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxFuzzBody {
			t.Skip()
		}
		r, err := DecodeStatus(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if r.Status == "" {
			t.Fatal("decoded without a status")
		}
		_ = r.ErrorCode()
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", r, err)
		}
		again, err := DecodeStatus(b)
		if err != nil || again != r {
			t.Fatalf("round trip of %s: got %+v, %v; want %+v", b, again, err, r)
		}
	})
}
